#!/usr/bin/env node
// Open-loop latency at a fixed rate: one call every 1/--rate s whatever the previous ones do, for
// --duration s after --warmup s (at most rate × (warmup + duration) calls, then at most --drain s to
// collect late answers). Latency is measured from the moment a call is written.
//   --target redis: ioredis GET (auto-pipelining on, as the Prism redis driver uses it)
//   --target grpc:  a plain node:http2 client sending gRPC-framed KeyValue Get (no grpc-js client, so
//                   the client's own GC does not dominate the tail); over TLS with --ca <pem>
// Prints one JSON line with p50/p90/p99/p99.9/max in ms, errors, and the achieved rate.
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { setTimeout } from 'node:timers';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { percentile } from './lib.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'grpc' },
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    drain: { type: 'string', default: '5' },
    url: { type: 'string', default: process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    key: { type: 'string' },
    port: { type: 'string' },
    path: { type: 'string', default: '/prism.data.v1.KeyValue/Get' },
    namespace: { type: 'string', default: '' },
    body: { type: 'string' },
    ca: { type: 'string' },
  },
});
const rate = Number(values.rate);
const warmupCalls = Math.round(rate * Number(values.warmup));
const total = warmupCalls + Math.round(rate * Number(values.duration));

let call;
let close;
if (values.target === 'redis') {
  const redis = new Redis(values.url, { enableAutoPipelining: true, lazyConnect: true });
  await redis.connect();
  call = () => redis.get(values.key).then(() => undefined);
  close = () => redis.disconnect();
} else {
  const body = Buffer.from(values.body, 'base64');
  const session = values.ca
    ? http2.connect(`https://127.0.0.1:${values.port}`, { ca: readFileSync(values.ca) })
    : http2.connect(`http://127.0.0.1:${values.port}`);
  await new Promise((resolve, reject) => {
    session.once('connect', resolve);
    session.once('error', reject);
  });
  const headers = {
    ':method': 'POST',
    ':path': values.path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...(values.namespace ? { 'x-prism-namespace': values.namespace } : {}),
  };
  call = () =>
    new Promise((resolve, reject) => {
      const req = session.request(headers);
      let status;
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = h['grpc-status'];
      });
      req.on('trailers', (h) => (status = h['grpc-status']));
      req.on('data', () => {});
      req.on('error', reject);
      req.on('close', () => (status === '0' ? resolve() : reject(new Error(`grpc-status ${status}`))));
      req.end(body);
    });
  close = () => session.close();
}

const latencies = [];
let errors = 0;
let done = 0;
let sent = 0;
const interval = 1000 / rate;
const t0 = performance.now();
let allDone;
const finished = new Promise((r) => (allDone = r));
const fire = (index) => {
  const start = performance.now();
  call()
    .then(
      () => {
        if (index >= warmupCalls) latencies.push(performance.now() - start);
      },
      () => {
        if (index >= warmupCalls) errors++;
      },
    )
    .finally(() => {
      if (++done === total) allDone();
    });
};
const tick = () => {
  const now = performance.now();
  while (sent < total && t0 + sent * interval <= now) fire(sent++);
  if (sent < total) setTimeout(tick, Math.max(0, t0 + sent * interval - performance.now()));
};
tick();
await Promise.race([
  finished,
  new Promise((r) =>
    setTimeout(r, (Number(values.warmup) + Number(values.duration) + Number(values.drain)) * 1000),
  ),
]);
const elapsed = (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const ms = (p) => +percentile(latencies, p).toFixed(3);
console.log(
  JSON.stringify({
    msg: 'result',
    target: values.target,
    rate,
    achievedRate: +(sent / elapsed).toFixed(1),
    samples: latencies.length,
    errors,
    lost: total - done,
    p50: ms(50),
    p90: ms(90),
    p99: ms(99),
    p999: ms(99.9),
    max: ms(100),
  }),
);
close();
