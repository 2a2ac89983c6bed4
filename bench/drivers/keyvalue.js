#!/usr/bin/env node
// Benchmark (not a test): keyvalue get and set through the prism drivers, next to the raw client
// doing the same work in the same run (ioredis with auto-pipelining, a pg Pool, better-sqlite3, a
// Map), at concurrency 1 and 64. Prints ops/s, p50/p99 latency and the ratio driver ÷ raw.
// Run after `npm run build`, with the test services up:
//   eval "$(bash scripts/test-services.sh env)"
//   node bench/drivers/keyvalue.js [--duration 3] [--backends memstore,sqlite,redis,postgres] [--value-size 100]
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    backends: { type: 'string', default: 'memstore,sqlite,redis,postgres' },
    'value-size': { type: 'string', default: '100' },
    keys: { type: 'string', default: '1000' },
  },
});
const durationMs = Number(values.duration) * 1000;
const valueSize = Number(values['value-size']);
const keyCount = Number(values.keys);
const backends = values.backends.split(',').map((b) => b.trim());
const CONCURRENCY = [1, 64];
const OPS = ['get', 'set'];

const redisUrl = process.env.PRISM_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const postgresUrl = process.env.PRISM_TEST_POSTGRES_URL || 'postgres://prism:prism@127.0.0.1:5432/prism_test';

const { createDriver } = await import(join(root, 'dist/drivers/registry.js'));

const value = Buffer.alloc(valueSize, 0x61);
const keys = Array.from({ length: keyCount }, (_, i) => `bench/${String(i).padStart(6, '0')}`);
const namespace = `bench-${Date.now().toString(36)}`;

/** Runs `op(i)` from `concurrency` workers for `ms`; returns the count, seconds and latencies (ms). */
async function run(op, concurrency, ms) {
  const latencies = [];
  let count = 0;
  const started = performance.now();
  const deadline = started + ms;
  async function worker(w) {
    let i = w;
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await op(i % keyCount);
      latencies.push(performance.now() - t0);
      count++;
      i += concurrency;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return { count, seconds: (performance.now() - started) / 1000, latencies };
}

function summarize(runs) {
  const count = runs.reduce((n, r) => n + r.count, 0);
  const seconds = runs.reduce((n, r) => n + r.seconds, 0);
  const latencies = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const pct = (p) =>
    latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? NaN;
  return { opsPerSec: count / seconds, p50: pct(50), p99: pct(99) };
}

/**
 * One cell: driver and raw client take turns (ROUNDS each, the cell's duration split between
 * them), so that load from elsewhere on the machine weighs on both sides alike.
 */
const ROUNDS = 3;
async function cell(driverOp, rawOp, concurrency) {
  const driverRuns = [];
  const rawRuns = [];
  for (let round = 0; round < ROUNDS; round++) {
    driverRuns.push(await run(driverOp, concurrency, durationMs / ROUNDS));
    rawRuns.push(await run(rawOp, concurrency, durationMs / ROUNDS));
  }
  return { d: summarize(driverRuns), r: summarize(rawRuns) };
}

/** Raw clients doing the same work as the driver: same keys, same value bytes. */
const RAW = {
  async memstore() {
    const map = new Map();
    return {
      get: async (i) => map.get(keys[i]),
      // The driver also copies on set (and, unlike this Map, on get: callers own what they get).
      set: async (i) => void map.set(keys[i], new Uint8Array(value)),
      close: async () => {},
    };
  },
  async sqlite(dir) {
    const db = new Database(join(dir, 'raw.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE IF NOT EXISTS raw_kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID');
    const get = db.prepare('SELECT value FROM raw_kv WHERE key = ?').pluck();
    const set = db.prepare(
      'INSERT INTO raw_kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    return {
      get: async (i) => get.get(keys[i]),
      set: async (i) => void set.run(keys[i], value),
      close: async () => db.close(),
    };
  },
  async redis() {
    const redis = new Redis(redisUrl, { enableAutoPipelining: true });
    const prefix = `${namespace}-raw:`;
    return {
      get: (i) => redis.getBuffer(prefix + keys[i]),
      set: (i) => redis.set(prefix + keys[i], value),
      close: async () => {
        await redis.del(...keys.map((k) => prefix + k));
        await redis.quit();
      },
    };
  },
  async postgres() {
    const pool = new pg.Pool({ connectionString: postgresUrl, max: 10 });
    const table = `bench_raw_kv_${namespace.replace(/-/g, '_')}`;
    await pool.query(`CREATE TABLE ${table} (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL)`);
    const get = { name: `${table}_get`, text: `SELECT value FROM ${table} WHERE key = $1` };
    const set = {
      name: `${table}_set`,
      text: `INSERT INTO ${table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    };
    return {
      get: (i) => pool.query({ ...get, values: [keys[i]] }),
      set: (i) => pool.query({ ...set, values: [keys[i], value] }),
      close: async () => {
        await pool.query(`DROP TABLE ${table}`);
        await pool.end();
      },
    };
  },
};

const DRIVER_OPTIONS = {
  memstore: () => ({ endpoint: 'memory://', namespace }),
  sqlite: (dir) => ({ endpoint: 'file:keyvalue.sqlite', namespace, dataDir: dir }),
  redis: () => ({ endpoint: redisUrl, namespace }),
  postgres: () => ({ endpoint: postgresUrl, namespace }),
};

async function cleanupDriver(backend, driver) {
  // Leave no bench keys behind in the shared services.
  if (backend === 'redis' || backend === 'postgres') {
    for (let i = 0; i < keys.length; i += 64)
      await Promise.all(keys.slice(i, i + 64).map((k) => driver.delete(k)));
  }
  await driver.close();
}

const fmt = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
const ms = (n) => n.toFixed(3);

const cpu = cpus();
console.log(
  `# keyvalue drivers vs raw clients — ${new Date().toISOString()}\n` +
    `# node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
    `load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n` +
    `# ${durationMs / 1000} s per cell and side (${ROUNDS} alternating rounds), value ${valueSize} B, ${keyCount} keys\n`,
);
console.log(
  '| backend | op | conc | driver ops/s | raw ops/s | driver ÷ raw | driver p50 / p99 ms | raw p50 / p99 ms |',
);
console.log('|---|---|---:|---:|---:|---:|---:|---:|');

for (const backend of backends) {
  const dir = mkdtempSync(join(tmpdir(), `prism-bench-${backend}-`));
  let driver;
  let raw;
  try {
    driver = await createDriver(backend, DRIVER_OPTIONS[backend](dir));
    await driver.connect();
    raw = await RAW[backend](dir);
    // Prefill so that get finds every key.
    for (let i = 0; i < keyCount; i += 64) {
      const batch = keys.slice(i, i + 64).map((_, j) => i + j);
      await Promise.all(batch.flatMap((k) => [driver.set(keys[k], value), raw.set(k)]));
    }
    const driverOps = { get: (i) => driver.get(keys[i]), set: (i) => driver.set(keys[i], value) };
    for (const op of OPS) {
      for (const concurrency of CONCURRENCY) {
        const { d, r } = await cell(driverOps[op], raw[op], concurrency);
        console.log(
          `| ${backend} | ${op} | ${concurrency} | ${fmt(d.opsPerSec)} | ${fmt(r.opsPerSec)} | ` +
            `${(d.opsPerSec / r.opsPerSec).toFixed(2)} | ${ms(d.p50)} / ${ms(d.p99)} | ${ms(r.p50)} / ${ms(r.p99)} |`,
        );
      }
    }
  } catch (err) {
    console.log(
      `| ${backend} | – | – | failed: ${err instanceof Error ? err.message : String(err)} | | | | |`,
    );
  } finally {
    if (driver) await cleanupDriver(backend, driver).catch(() => {});
    if (raw) await raw.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
