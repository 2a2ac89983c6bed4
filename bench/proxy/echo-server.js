#!/usr/bin/env node
// The transport ceiling: prism.data.v1.KeyValue Get/Set answered at once, without routing,
// runner or backend, with the same protobuf-es codec the proxy uses. Bench only.
//   node bench/proxy/echo-server.js --transport grpc-js|connect [--workers N] [--value-size 100]
// Prints {"msg":"bench server ready","port":…} once serving on 127.0.0.1.
import http2 from 'node:http2';
import { parseArgs } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { grpcServiceDefinition } from '../../dist/transport/service-definition.js';
import { GetResponseSchema, KeyValue, SetResponseSchema } from '../../dist/gen/prism/data/v1/keyvalue_pb.js';
import { serveClustered } from './lib.js';

const { values } = parseArgs({
  options: {
    transport: { type: 'string', default: 'grpc-js' },
    workers: { type: 'string', default: '1' },
    'value-size': { type: 'string', default: '100' },
    port: { type: 'string', default: '0' },
  },
});
const value = new Uint8Array(Number(values['value-size'])).fill(120);
const port = Number(values.port);

async function startGrpcJs() {
  const server = new Server();
  server.addService(grpcServiceDefinition(KeyValue), {
    get: (_call, callback) => callback(null, create(GetResponseSchema, { found: true, value })),
    set: (_call, callback) => callback(null, create(SetResponseSchema)),
  });
  return new Promise((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
}

async function startConnect() {
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(KeyValue, {
        get: () => create(GetResponseSchema, { found: true, value }),
        set: () => create(SetResponseSchema),
      }),
  });
  const server = http2.createServer(handler);
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server.address().port;
}

await serveClustered(Number(values.workers), values.transport === 'connect' ? startConnect : startGrpcJs);
