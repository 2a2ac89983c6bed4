#!/usr/bin/env node
// Direct ioredis GET, closed loop: --concurrency callers each awaiting GET in turn for --duration
// seconds (and at most --max-ops calls). Prints one JSON line: ops/s, errors and this process's CPU.
// With --mget N each call is one MGET of the keys <key>0 … <key>N-1 instead.
//   node bench/proxy/redis-load.js --key bench-kv:k --concurrency 64 --duration 8 [--autopipelining]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    key: { type: 'string' },
    concurrency: { type: 'string', default: '64' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '1' },
    'max-ops': { type: 'string', default: '5000000' },
    autopipelining: { type: 'boolean', default: false },
    mget: { type: 'string', default: '0' },
  },
});
const redis = new Redis(values.url, { enableAutoPipelining: values.autopipelining, lazyConnect: true });
await redis.connect();
const mgetKeys = Array.from({ length: Number(values.mget) }, (_, i) => `${values.key}${i}`);
const call = mgetKeys.length > 0 ? () => redis.mgetBuffer(mgetKeys) : () => redis.getBuffer(values.key);

async function loop(untilMs, counter) {
  const callers = Array.from({ length: Number(values.concurrency) }, async () => {
    while (performance.now() < untilMs && counter.ops + counter.errors < Number(values['max-ops'])) {
      try {
        await call();
        counter.ops++;
      } catch {
        counter.errors++;
      }
    }
  });
  await Promise.all(callers);
}

await loop(performance.now() + Number(values.warmup) * 1000, { ops: 0, errors: 0 });
const counter = { ops: 0, errors: 0 };
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await loop(t0 + Number(values.duration) * 1000, counter);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(
  JSON.stringify({
    msg: 'result',
    autopipelining: values.autopipelining,
    mget: mgetKeys.length,
    opsPerSec: counter.ops / seconds,
    ops: counter.ops,
    errors: counter.errors,
    seconds,
    clientCpuSec: (cpu.user + cpu.system) / 1e6,
  }),
);
redis.disconnect();
