#!/usr/bin/env node
// Benchmark (not a test) of the control plane over real gRPC: apply 1,000 distinct namespaces,
// re-apply them unchanged, and GetNamespace latency, for SQLite and (when PRISM_TEST_POSTGRES_URL
// or --postgres is given) PostgreSQL. Run after `npm run build`:
//   node bench/admin/index.js [--count 1000] [--concurrency 8] [--postgres postgres://...]
import { mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pino } from 'pino';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '8' },
    postgres: { type: 'string', default: process.env.PRISM_TEST_POSTGRES_URL ?? '' },
  },
});
const count = Number(values.count);
const concurrency = Number(values.concurrency);

const { AdminServer } = await import(join(root, 'dist/admin/server.js'));
const { openStore } = await import(join(root, 'dist/admin/open-store.js'));
const { defaultCatalog } = await import(join(root, 'dist/admin/catalog.js'));
const { AdminClient } = await import(join(root, 'dist/client/admin-client.js'));
const { validateSources } = await import(join(root, 'dist/config/validate.js'));

const namespaces = Array.from({ length: count }, (_, i) => {
  const text = `namespace: bench-${i}\nteam: team-${i % 13}\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: ${i % 2 ? 'redis' : 'postgres'} }\n  - name: events\n    type: producer\n    slots:\n      sink: { backend: kafka }\n    settings: { topic: bench.${i} }\n`;
  return validateSources([{ file: `bench-${i}.yaml`, text }]).loaded[0].request;
});

console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log(`${count} namespaces, ${concurrency} calls in flight over one connection\n`);

const stores = [['sqlite', () => join(mkdtempSync(join(tmpdir(), 'prism-bench-admin-')), 'admin.db'), {}]];
let pgSchema;
if (values.postgres) {
  pgSchema = `bench_admin_${process.pid}`;
  stores.push(['postgres', () => values.postgres, { schema: pgSchema }]);
}

for (const [label, spec, options] of stores) {
  const store = await openStore(spec(), options);
  const server = new AdminServer({
    listen: '127.0.0.1:0',
    metricsListen: '127.0.0.1:0',
    store,
    catalog: defaultCatalog(),
    logger: pino({ level: 'silent' }),
  });
  await server.start();
  const client = new AdminClient(`127.0.0.1:${server.grpcPort}`);
  try {
    const create = await timed(count, (i) => client.apply({ namespace: namespaces[i], source: 'bench' }));
    const unchanged = await timed(count, (i) => client.apply({ namespace: namespaces[i], source: 'bench' }));
    const gets = await timed(count, (i) => client.get(`bench-${i}`));
    console.log(
      `${label.padEnd(8)} apply new: ${create.rate.toFixed(0)} ops/s   re-apply unchanged: ${unchanged.rate.toFixed(0)} ops/s   GetNamespace: ${gets.rate.toFixed(0)} ops/s, p50 ${gets.p50.toFixed(2)} ms, p99 ${gets.p99.toFixed(2)} ms`,
    );
  } finally {
    client.close();
    await server.stop();
  }
}
if (pgSchema) {
  const c = new pg.Client({ connectionString: values.postgres });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`);
  await c.end();
}

async function timed(n, op) {
  const latencies = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        await op(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { rate: n / seconds, p50: latencies[Math.floor(n * 0.5)], p99: latencies[Math.floor(n * 0.99)] };
}
