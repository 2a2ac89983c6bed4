#!/usr/bin/env node
// The smallest grpc-js proxy that does the Prism proxy's job for one call: KeyValue Get and
// BatchGet read `<x-prism-namespace>:<--key-prefix><key>` from Redis with ioredis (auto-pipelining on, as the
// Prism redis driver), same protobuf-es codec, no routing table, runner, auth or metrics. The
// 1-worker yardstick of bench/proxy/goals.js. Bench only.
//   node bench/proxy/minimal-proxy.js [--redis redis://127.0.0.1:6379] [--key-prefix keyvalue/cache/] [--workers N]
// Prints {"msg":"bench server ready","port":…} once serving on 127.0.0.1.
import { parseArgs } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { grpcServiceDefinition } from '../../dist/transport/service-definition.js';
import {
  BatchGetResponseSchema,
  GetResponseSchema,
  KeyValue,
} from '../../dist/gen/prism/data/v1/keyvalue_pb.js';
import { serveClustered } from './lib.js';

const { values } = parseArgs({
  options: {
    redis: { type: 'string', default: process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'key-prefix': { type: 'string', default: '' },
    workers: { type: 'string', default: '1' },
    port: { type: 'string', default: '0' },
  },
});

let redis;

const prefix = (call) => `${call.metadata.get('x-prism-namespace')[0] ?? ''}:${values['key-prefix']}`;
const unavailable = (callback) => (err) => callback({ code: status.UNAVAILABLE, details: err.message });

async function start() {
  redis = new Redis(values.redis, { enableAutoPipelining: true, lazyConnect: true });
  await redis.connect();
  const server = new Server();
  server.addService(grpcServiceDefinition(KeyValue), {
    get: (call, callback) => {
      redis
        .getBuffer(prefix(call) + call.request.key)
        .then(
          (v) => callback(null, create(GetResponseSchema, v ? { found: true, value: v } : {})),
          unavailable(callback),
        );
    },
    batchGet: (call, callback) => {
      const p = prefix(call);
      redis.mgetBuffer(call.request.keys.map((k) => p + k)).then(
        (vs) =>
          callback(
            null,
            create(BatchGetResponseSchema, {
              results: vs.map((v) => (v ? { found: true, value: v } : {})),
            }),
          ),
        unavailable(callback),
      );
    },
  });
  return new Promise((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${values.port}`, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
}

await serveClustered(Number(values.workers), start, async () => redis?.disconnect());
