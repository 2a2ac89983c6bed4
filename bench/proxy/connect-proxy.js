#!/usr/bin/env node
// Bench-only variant of the Prism proxy on @connectrpc/connect-node: the same NamespaceTable
// routing (x-prism-namespace / x-prism-pattern), the same runners and drivers (createRunner), the
// same per-call metrics as ProxyServer's observer (request counter, latency histogram, in-flight
// gauge), behind connect-node's gRPC handler on node:http2 (h2c). KeyValue Get and Set only.
//   node bench/proxy/connect-proxy.js --namespaces <dir> [--workers N]
// Prints {"msg":"bench server ready","port":…}; on SIGTERM each worker prints
// {"msg":"bench server counts","codes":{…}} with calls by outcome.
import http2 from 'node:http2';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { pino } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { toServiceError } from '../../dist/transport/grpc-status.js';
import { isPrismError, PrismError } from '../../dist/errors.js';
import { GetResponseSchema, KeyValue, SetResponseSchema } from '../../dist/gen/prism/data/v1/keyvalue_pb.js';
import { loadServedNamespaces } from '../../dist/admin/local-namespaces.js';
import { NamespaceTable } from '../../dist/proxy/namespace-table.js';
import { ANONYMOUS } from '../../dist/runners/call-context.js';
import { NAMESPACE_HEADER } from '../../dist/transport/metadata.js';
import { createRunner } from '../../dist/runners/create-runner.js';
import { serveClustered } from './lib.js';

const { values } = parseArgs({
  options: {
    namespaces: { type: 'string' },
    backends: { type: 'string' },
    workers: { type: 'string', default: '1' },
    port: { type: 'string', default: '0' },
  },
});

let table;
const codes = {};

async function start() {
  const logger = pino({ level: 'warn' });
  const dataDir = mkdtempSync(join(tmpdir(), 'prism-bench-connect-'));
  table = new NamespaceTable(
    async (ns, assignment, pattern) =>
      createRunner(
        ns,
        pattern,
        assignment.patterns.find((p) => p.name === pattern),
        { dataDir },
      ),
    logger,
  );
  await table.reconcile(await loadServedNamespaces([values.namespaces], { backends: values.backends }));

  const registry = new Registry();
  const requests = new Counter({
    name: 'prism_proxy_requests_total',
    help: 'calls',
    labelNames: ['namespace', 'service', 'method', 'code'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'prism_proxy_request_seconds',
    help: 'latency',
    labelNames: ['namespace', 'service', 'method'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  const inFlight = new Gauge({ name: 'prism_proxy_in_flight', help: 'in flight', registers: [registry] });

  // NamespaceTable.route reads metadata through `.get(key)[0]`: a view of the request headers.
  const metadataOf = (headers) => ({ get: (key) => (headers.has(key) ? [headers.get(key)] : []) });

  const unary = (method, handler) => async (req, context) => {
    inFlight.inc();
    const namespace = context.requestHeader.get(NAMESPACE_HEADER) ?? '';
    const stop = latency.startTimer({ service: 'KeyValue', method });
    let code = 'OK';
    try {
      const { runner, namespace: served } = table.route(metadataOf(context.requestHeader), 'keyvalue');
      if (served.namespace.auth?.enabled)
        throw new PrismError('E_UNAUTHENTICATED', 'auth-enabled namespaces are not served by this bench');
      void ANONYMOUS;
      return await handler(runner, req);
    } catch (err) {
      code = isPrismError(err) ? err.code : 'E_INTERNAL';
      const status = toServiceError(err);
      throw new ConnectError(status.details ?? 'internal error', status.code ?? Code.Internal);
    } finally {
      const label = table.names().includes(namespace) ? namespace : 'unknown';
      stop({ namespace: label });
      requests.inc({ namespace: label, service: 'KeyValue', method, code });
      codes[code] = (codes[code] ?? 0) + 1;
      inFlight.dec();
    }
  };

  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(KeyValue, {
        get: unary('Get', async (runner, req) => {
          const value = await runner.get(req.key);
          return create(GetResponseSchema, { found: value !== undefined, value: value ?? new Uint8Array() });
        }),
        set: unary('Set', async (runner, req) => {
          await runner.set(req.key, req.value, Number(req.ttlSeconds));
          return create(SetResponseSchema);
        }),
      }),
  });
  const server = http2.createServer(handler);
  await new Promise((resolve) => server.listen(Number(values.port), '127.0.0.1', resolve));
  return server.address().port;
}

await serveClustered(Number(values.workers), start, async () => {
  console.log(JSON.stringify({ msg: 'bench server counts', pid: process.pid, codes }));
  await table?.stop();
});
