#!/usr/bin/env node
// Benchmark (not a test) of the mailbox pattern (issue 18), in one run:
//
// 1. Ingest: --count messages are published to a NATS JetStream topic (the prism nats driver),
//    then read twice from the start by two consumer groups: the raw loop (the same driver's
//    consume, one plain INSERT per message into a store of the same backend, ack after it) and the
//    mailbox runner (createRunner, as the proxy builds it). Messages/s of each, and the ratio
//    mailbox ÷ raw (goal >= 0.8).
// 2. Query: --rows messages are loaded into a mailbox store (published over 30 days, header
//    order-id with --orders values), then --queries Query calls of the last 3 days + one order-id,
//    newest first, limit 100: p50 and p99 (goal p99 <= 20 ms), with the query plan.
//
// Run after `npm run build` with the test services up:
//   eval "$(bash scripts/test-services.sh env)"
//   node bench/mailbox/index.js [--stores sqlite,postgres] [--count 20000] [--rows 1000000]
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import { setTimeout } from 'node:timers';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { create } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import pg from 'pg';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: {
    stores: { type: 'string', default: 'sqlite,postgres' },
    count: { type: 'string', default: '20000' },
    size: { type: 'string', default: '256' },
    rows: { type: 'string', default: '1000000' },
    orders: { type: 'string', default: '1000' },
    queries: { type: 'string', default: '1000' },
    skip: { type: 'string', default: '' },
  },
});
const COUNT = Number(values.count);
const ROWS = Number(values.rows);
const ORDERS = Number(values.orders);
const QUERIES = Number(values.queries);
const stores = values.stores.split(',').map((s) => s.trim());
const skip = new Set(values.skip.split(',').filter(Boolean));
const natsUrl = process.env.PRISM_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const postgresUrl = process.env.PRISM_TEST_POSTGRES_URL ?? 'postgres://prism:prism@127.0.0.1:5432/prism_test';

const load = (p) => import(join(root, 'dist', p));
const { createDriver } = await load('drivers/registry.js');
const { createRunner } = await load('runners/create-runner.js');
const { encodeEnvelope } = await load('runners/envelope.js');
const { selectStatement } = await load('drivers/mailbox-sql.js');
const cfg = await load('gen/prism/config/v1/namespace_pb.js');
const { EnvelopeSchema } = await load('gen/prism/data/v1/envelope_pb.js');

const DAY = 86_400_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
const quiet = { info() {}, warn() {}, error: (obj, msg) => console.error(msg, obj) };

/** A fresh PostgreSQL schema for one store (the connection's search_path), dropped at the end. */
async function postgresSchema() {
  const name = `prism_bench_mailbox_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${name}`);
  await admin.end();
  const url = new URL(postgresUrl);
  url.searchParams.set('options', `-c search_path=${name}`);
  return {
    endpoint: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: postgresUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      await c.end();
    },
  };
}

async function storePlace(store) {
  if (store === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'prism-bench-mailbox-'));
    return {
      endpoint: 'file:mailbox.sqlite',
      dataDir: dir,
      drop: async () => rmSync(dir, { recursive: true }),
    };
  }
  return postgresSchema();
}

// -- 1. ingest ------------------------------------------------------------------------------

async function publishAll(namespace, topic) {
  const nats = await createDriver('nats', { endpoint: natsUrl, namespace });
  await nats.connect();
  const payload = new Uint8Array(Number(values.size)).fill(7);
  let next = 0;
  const worker = async () => {
    while (next < COUNT) {
      const i = next++;
      await nats.enqueue(
        encodeEnvelope(
          create(EnvelopeSchema, {
            messageId: randomUUID(),
            topic,
            namespace,
            publishedAtMs: BigInt(Date.now()),
            headers: { 'order-id': `o-${i % ORDERS}` },
            payload,
          }),
        ),
      );
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  await nats.close();
}

/** The raw loop: consume with the driver, one INSERT per message into the same backend, then ack. */
async function rawIngest(namespace, topic, store, place) {
  const nats = await createDriver('nats', { endpoint: natsUrl, namespace });
  await nats.connect();
  let insert;
  let close;
  if (store === 'sqlite') {
    const db = new Database(join(place.dataDir, 'raw.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(
      'CREATE TABLE raw (seq INTEGER PRIMARY KEY, message_id TEXT UNIQUE, published_at_ms INTEGER, headers TEXT, payload BLOB)',
    );
    const st = db.prepare(
      'INSERT INTO raw (message_id, published_at_ms, headers, payload) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    insert = async (m) =>
      st.run(m.headers['prism-message-id'], Date.now(), JSON.stringify(m.headers), Buffer.from(m.payload));
    close = async () => db.close();
  } else {
    const pool = new pg.Pool({ connectionString: place.endpoint, max: 10 });
    await pool.query(
      'CREATE TABLE raw (seq bigserial PRIMARY KEY, message_id text UNIQUE, published_at_ms bigint, headers text, payload bytea)',
    );
    insert = (m) =>
      pool.query({
        name: 'raw_insert',
        text: 'INSERT INTO raw (message_id, published_at_ms, headers, payload) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        values: [
          m.headers['prism-message-id'],
          Date.now(),
          JSON.stringify(m.headers),
          Buffer.from(m.payload),
        ],
      });
    close = () => pool.end();
  }
  let done = 0;
  let finished;
  const all = new Promise((r) => (finished = r));
  const started = performance.now();
  const sub = await nats.consume(topic, 'raw', async (d) => {
    await insert(d);
    await d.ack();
    if (++done === COUNT) finished();
  });
  await all;
  const seconds = (performance.now() - started) / 1000;
  await sub.close();
  await nats.close();
  await close();
  return COUNT / seconds;
}

function mailboxNamespace(namespace, topic, store, place) {
  const ns = create(cfg.NamespaceRequestSchema, {
    namespace,
    team: 'bench',
    patterns: [
      create(cfg.PatternSchema, {
        name: 'inbox',
        type: 'mailbox',
        settings: create(cfg.PatternSettingsSchema, { topic, indexedHeaders: ['order-id'] }),
      }),
    ],
  });
  const assignment = create(cfg.PatternAssignmentSchema, {
    name: 'inbox',
    type: 'mailbox',
    version: 'v1',
    slots: [
      create(cfg.SlotAssignmentSchema, { slot: 'source', backend: 'nats', endpoint: natsUrl }),
      create(cfg.SlotAssignmentSchema, { slot: 'store', backend: store, endpoint: place.endpoint }),
    ],
  });
  return createRunner(ns, 'inbox', assignment, {
    logger: quiet,
    ...(place.dataDir ? { dataDir: place.dataDir } : {}),
  });
}

async function mailboxIngest(namespace, topic, store, place) {
  const counter = await createDriver(store, { endpoint: place.endpoint, namespace, dataDir: place.dataDir });
  await counter.connect();
  const runner = mailboxNamespace(namespace, topic, store, place);
  const started = performance.now();
  await runner.start();
  const box = await counter.openMailbox('inbox', { indexedHeaders: ['order-id'] });
  while ((await box.count()) < COUNT) await sleep(20);
  const seconds = (performance.now() - started) / 1000;
  await runner.stop();
  await counter.close();
  return COUNT / seconds;
}

// -- 2. query ---------------------------------------------------------------------------------

const T_END = Date.parse('2026-12-01T00:00:00Z');
const T_START = T_END - 30 * DAY;

async function fillSqlite(place, namespace) {
  const driver = await createDriver('sqlite', {
    endpoint: place.endpoint,
    namespace,
    dataDir: place.dataDir,
  });
  await driver.connect();
  const box = await driver.openMailbox('query', { indexedHeaders: ['order-id'] });
  const meta = new Uint8Array(0);
  const payload = new Uint8Array(256).fill(1);
  const BATCH = 5000;
  for (let i = 0; i < ROWS; i += BATCH) {
    const records = [];
    for (let j = i; j < Math.min(ROWS, i + BATCH); j++) {
      records.push({
        messageId: `m-${j}`,
        topic: 'orders.events',
        publishedAtMs: T_START + Math.floor((j / ROWS) * 30 * DAY),
        storedAtMs: T_END,
        correlationId: '',
        subject: `user-${j % 50}`,
        tenant: `tenant-${j % 7}`,
        headers: { 'order-id': `o-${(j * 7919) % ORDERS}` },
        meta,
        payload,
        payloadSize: payload.length,
        payloadOmitted: false,
      });
    }
    await box.insert(records);
  }
  const db = new Database(join(place.dataDir, 'mailbox.sqlite'));
  db.exec('ANALYZE');
  const explain = (s) =>
    db
      .prepare(`EXPLAIN QUERY PLAN ${s.text}`)
      .all(...s.values)
      .map((r) => r.detail)
      .join('\n');
  return { box, explain, close: async () => (db.close(), driver.close()) };
}

async function fillPostgres(place, namespace) {
  const driver = await createDriver('postgres', { endpoint: place.endpoint, namespace });
  await driver.connect();
  const box = await driver.openMailbox('query', { indexedHeaders: ['order-id'] });
  const c = new pg.Client({ connectionString: place.endpoint });
  await c.connect();
  const b = `${namespace}/query`;
  // Bulk load with generate_series: the same rows the SQLite store gets through insert().
  await c.query(
    `INSERT INTO prism_mailbox (box, message_id, topic, published_at_ms, stored_at_ms, correlation_id, subject, tenant,
       headers, meta, payload, payload_size, payload_omitted)
     SELECT $1, 'm-' || j, 'orders.events', $2::bigint + floor(j::numeric / $3 * 30 * ${DAY})::bigint, $4, '',
       'user-' || (j % 50), 'tenant-' || (j % 7), json_build_object('order-id', 'o-' || ((j * 7919) % $5))::text,
       ''::bytea, decode(repeat('01', 256), 'hex'), 256, 0
     FROM generate_series(0::bigint, $3::bigint - 1) AS j`,
    [b, T_START, ROWS, T_END, ORDERS],
  );
  await c.query(
    `INSERT INTO prism_mailbox_header (box, name, value, published_at_ms, seq)
     SELECT box, 'order-id', headers::json->>'order-id', published_at_ms, seq FROM prism_mailbox WHERE box = $1`,
    [b],
  );
  await c.query('VACUUM ANALYZE prism_mailbox');
  await c.query('VACUUM ANALYZE prism_mailbox_header');
  const explain = async (s) => {
    let n = 0;
    const text = s.text.replace(/\?/g, () => `$${++n}`);
    const res = await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, s.values);
    return res.rows.map((r) => r['QUERY PLAN']).join('\n');
  };
  return { box, explain, close: async () => (await c.end(), await driver.close()) };
}

async function queryBench(store, place) {
  const namespace = `bench-q-${Date.now().toString(36)}`;
  const t0 = performance.now();
  const filled =
    store === 'sqlite' ? await fillSqlite(place, namespace) : await fillPostgres(place, namespace);
  const fillSeconds = (performance.now() - t0) / 1000;
  const filter = (i) => ({ sinceMs: T_END - 3 * DAY, headers: { 'order-id': `o-${(i * 31) % ORDERS}` } });
  for (let i = 0; i < 50; i++) await filled.box.query(filter(i), { order: 'newest', limit: 100 }); // warm up
  const latencies = [];
  const cpu = [];
  let rows = 0;
  for (let i = 0; i < QUERIES; i++) {
    const c0 = process.cpuUsage();
    const q0 = performance.now();
    const page = await filled.box.query(filter(i), { order: 'newest', limit: 100 });
    latencies.push(performance.now() - q0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    rows += page.records.length;
  }
  latencies.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const statement = selectStatement(`${namespace}/query`, filter(1), {
    columns: 'rows',
    order: 'newest',
    limit: 101,
  });
  const plan = await filled.explain(statement);
  await filled.close();
  return {
    fillSeconds,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    cpuP50: pct(cpu, 50),
    cpuP99: pct(cpu, 99),
    rowsPerQuery: rows / QUERIES,
    plan,
  };
}

// -- run --------------------------------------------------------------------------------------

console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log(
  `ingest: ${COUNT} messages of ${values.size} B from NATS JetStream; query: ${ROWS} rows, ${QUERIES} queries`,
);
for (const store of stores) {
  const place = await storePlace(store);
  try {
    if (!skip.has('ingest')) {
      const namespace = `bench-i-${Date.now().toString(36)}`;
      const topic = 'orders.events';
      await publishAll(namespace, topic);
      const raw = await rawIngest(namespace, topic, store, place);
      const mailbox = await mailboxIngest(namespace, topic, store, place);
      console.log(
        `${store.padEnd(8)} ingest  raw consume+insert ${raw.toFixed(0)} msg/s   mailbox runner ${mailbox.toFixed(0)} msg/s   ratio ${(mailbox / raw).toFixed(2)} (goal >= 0.8)`,
      );
    }
    if (!skip.has('query')) {
      const q = await queryBench(store, place);
      console.log(
        `${store.padEnd(8)} query   last 3 days + order-id, newest first, limit 100 over ${ROWS} rows: p50 ${q.p50.toFixed(2)} ms  p99 ${q.p99.toFixed(2)} ms (goal p99 <= 20 ms); CPU of this process per query p50 ${q.cpuP50.toFixed(2)} ms p99 ${q.cpuP99.toFixed(2)} ms (${q.rowsPerQuery.toFixed(1)} rows/query; loaded in ${q.fillSeconds.toFixed(0)} s)`,
      );
      console.log(`${store} plan:\n  ${q.plan.split('\n').join('\n  ')}`);
    }
  } finally {
    await place.drop();
  }
}
