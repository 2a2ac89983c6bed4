#!/usr/bin/env node
// Benchmark (not a test): publish → consume throughput of each messaging driver next to the raw
// client library doing the same work in the same run, with the ratio driver/raw. Run after
// `npm run build` with the test services up:
//   eval "$(bash scripts/test-services.sh env)"; node bench/drivers/messaging.js [--budget 3000]
// Each cell publishes up to --count messages of --size bytes with at most --window publishes in
// flight, stops publishing after --budget ms, and counts messages/s from the first publish to the
// last message received (queue cells acknowledge each message). A cell whose service does not
// answer prints "skipped".
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout } from 'node:timers';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { connect as natsConnect, headers as natsHeaders, nanos } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: {
    budget: { type: 'string', default: '3000' },
    count: { type: 'string', default: '20000' },
    size: { type: 'string', default: '256' },
    window: { type: 'string', default: '64' },
    only: { type: 'string' },
  },
});
const BUDGET_MS = Number(values.budget);
const COUNT = Number(values.count);
const WINDOW = Number(values.window);
const payload = new Uint8Array(Number(values.size)).fill(7);
const hdrs = { 'content-type': 'application/octet-stream', 'x-trace': 'bench' };

const env = {
  redis: process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  nats: process.env.PRISM_TEST_NATS_URL ?? 'nats://127.0.0.1:4222',
  postgres: process.env.PRISM_TEST_POSTGRES_URL ?? 'postgres://prism:prism@127.0.0.1:5432/prism_test',
  kafka: (process.env.PRISM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
};

const load = (p) => import(join(root, 'dist', p));
const { createMemstoreMessaging } = await load('drivers/memstore/messaging.js');
const { createRedisPubSub } = await load('drivers/redis/pubsub.js');
const { createRedisStreams } = await load('drivers/redis/streams.js');
const { createPostgresQueue } = await load('drivers/postgres/queue.js');
const { createNatsDriver } = await load('drivers/nats/index.js');
const { createKafkaDriver } = await load('drivers/kafka/index.js');

const ns = `bench${Date.now().toString(36)}`;
const topic = () => `t${randomUUID().slice(0, 8)}`;

/**
 * One cell: `start(onMessage)` wires the consumer (returns a stop function); `publish()` sends one
 * message. Returns messages/s end to end.
 */
async function measure({ start, publish }) {
  let received = 0;
  let target = Infinity;
  let lastAt = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const stop = await start(() => {
    received++;
    lastAt = performance.now();
    if (received >= target) finish();
  });
  const t0 = performance.now();
  let sent = 0;
  const inflight = new Set();
  while (sent < COUNT && performance.now() - t0 < BUDGET_MS) {
    const p = publish().finally(() => inflight.delete(p));
    inflight.add(p);
    sent++;
    if (inflight.size >= WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  target = sent;
  if (received >= target) finish();
  await Promise.race([finished, new Promise((r) => setTimeout(r, 15_000))]);
  await stop();
  const seconds = ((received >= target ? lastAt : performance.now()) - t0) / 1000;
  return { rate: received / seconds, received, sent };
}

/**
 * The driver side of a cell: a connected driver subscribing (pubsub) or consuming in group `g` and
 * acknowledging each message (queue), on a fresh topic; the driver closes with the cell.
 */
async function driverCell(kind, driver) {
  await driver.connect();
  const t = topic();
  const message = () => ({ topic: t, payload, headers: hdrs });
  return {
    start: async (on) => {
      const s =
        kind === 'pubsub'
          ? await driver.subscribe(t, on)
          : await driver.consume(t, 'g', async (m) => {
              await m.ack();
              on();
            });
      return async () => {
        await s.close();
        await driver.close();
      };
    },
    publish: () => (kind === 'pubsub' ? driver.publish(message()) : driver.enqueue(message())),
  };
}

const rows = [];
async function pair(name, driverCell, rawCell) {
  if (values.only && !name.includes(values.only)) return;
  try {
    const d = await measure(await driverCell());
    const r = await measure(await rawCell());
    rows.push({ name, driver: d, raw: r });
    const fmt = (x) => `${Math.round(x.rate).toLocaleString('en-US')}/s (${x.received}/${x.sent})`;
    console.log(
      `${name.padEnd(22)} driver ${fmt(d).padEnd(26)} raw ${fmt(r).padEnd(26)} ratio ${(d.rate / r.rate).toFixed(2)}`,
    );
  } catch (err) {
    console.log(`${name.padEnd(22)} skipped: ${err instanceof Error ? err.message : String(err)}`);
  }
}

// ---- memstore ---------------------------------------------------------------------------------
await pair(
  'memstore pubsub',
  () => driverCell('pubsub', createMemstoreMessaging({ endpoint: 'memory://bench', namespace: ns })),
  async () => {
    const ee = new EventEmitter();
    return {
      start: async (on) => {
        ee.on('m', on);
        return async () => ee.off('m', on);
      },
      publish: async () => void ee.emit('m', { payload: Uint8Array.from(payload), headers: { ...hdrs } }),
    };
  },
);
await pair(
  'memstore queue',
  () => driverCell('queue', createMemstoreMessaging({ endpoint: 'memory://bench', namespace: ns })),
  async () => {
    const q = [];
    let wake;
    let stopped = false;
    return {
      start: async (on) => {
        void (async () => {
          while (!stopped) {
            if (q.length === 0) await new Promise((r) => (wake = r));
            while (q.length) {
              q.shift();
              on();
            }
          }
        })();
        return async () => {
          stopped = true;
          wake?.();
        };
      },
      publish: async () => {
        q.push({ payload: Uint8Array.from(payload), headers: { ...hdrs } });
        wake?.();
      },
    };
  },
);

// ---- redis pubsub -----------------------------------------------------------------------------
await pair(
  'redis pubsub',
  () => driverCell('pubsub', createRedisPubSub({ endpoint: env.redis, namespace: ns })),
  async () => {
    const pub = new Redis(env.redis);
    const sub = new Redis(env.redis);
    const channel = `raw:${topic()}`;
    return {
      start: async (on) => {
        sub.on('messageBuffer', on);
        await sub.subscribe(channel);
        return async () => {
          pub.disconnect();
          sub.disconnect();
        };
      },
      publish: () => pub.publish(channel, Buffer.from(payload)),
    };
  },
);

// ---- redis streams (queue) ---------------------------------------------------------------------
await pair(
  'redis streams queue',
  () => driverCell('queue', createRedisStreams({ endpoint: env.redis, namespace: ns })),
  async () => {
    // The same work by hand: XADD payload + JSON headers (auto-pipelined), a group from id 0, one
    // member reading XREADGROUP COUNT 64 BLOCK on its own connection, decoding each entry and
    // XACKing it.
    const commands = new Redis(env.redis, { enableAutoPipelining: true });
    const reader = new Redis(env.redis);
    const key = `raw-stream:${topic()}`;
    await commands.xgroup('CREATE', key, 'g', '0', 'MKSTREAM');
    let stopped = false;
    return {
      start: async (on) => {
        const loop = (async () => {
          while (!stopped) {
            const reply = await reader
              .xreadgroupBuffer('GROUP', 'g', 'c1', 'COUNT', 64, 'BLOCK', 1000, 'STREAMS', key, '>')
              .catch(() => null);
            for (const [id, fields] of reply?.[0]?.[1] ?? []) {
              // What any reader does with an entry: take the payload and parse the headers.
              const message = { payload: fields[1], headers: JSON.parse(fields[3].toString('utf8')) };
              await commands.xack(key, 'g', id);
              on(message);
            }
          }
        })();
        return async () => {
          stopped = true;
          reader.disconnect();
          await loop;
          await commands.del(key);
          commands.disconnect();
        };
      },
      publish: () =>
        commands.xadd(key, '*', 'payload', Buffer.from(payload), 'headers', JSON.stringify(hdrs)),
    };
  },
);

{
  // The driver cell's streams (prism/stream:<namespace>:<topic>) go with the run.
  const redis = new Redis(env.redis, { lazyConnect: true });
  try {
    await redis.connect();
    const keys = await redis.keys(`prism/stream:${ns}:*`);
    if (keys.length > 0) await redis.del(...keys);
  } catch {
    // Redis is not running: the cell said "skipped".
  }
  redis.disconnect();
}

// ---- postgres queue ---------------------------------------------------------------------------
await pair(
  'postgres queue',
  () => driverCell('queue', createPostgresQueue({ endpoint: env.postgres, namespace: ns })),
  async () => {
    // The same work by hand: insert with jsonb headers; claim a batch with SKIP LOCKED; delete each.
    const pool = new pg.Pool({ connectionString: env.postgres, max: 10 });
    const table = `raw_${topic()}`;
    await pool.query(
      `CREATE TABLE ${table} (id bigserial PRIMARY KEY, payload bytea, headers jsonb, published_at bigint,
         visible_at timestamptz NOT NULL DEFAULT now())`,
    );
    let stopped = false;
    return {
      start: async (on) => {
        const loop = (async () => {
          while (!stopped) {
            const { rows } = await pool.query(
              `UPDATE ${table} t SET visible_at = now() + interval '30 seconds'
                 FROM (SELECT id FROM ${table} WHERE visible_at <= now() ORDER BY id LIMIT 16 FOR UPDATE SKIP LOCKED) c
                WHERE t.id = c.id RETURNING t.id, t.payload, t.headers`,
            );
            for (const row of rows) {
              await pool.query(`DELETE FROM ${table} WHERE id = $1`, [row.id]);
              on();
            }
            if (rows.length === 0) await new Promise((r) => setTimeout(r, 100));
          }
        })();
        return async () => {
          stopped = true;
          await loop;
          await pool.query(`DROP TABLE ${table}`);
          await pool.end();
        };
      },
      publish: () =>
        pool.query(`INSERT INTO ${table} (payload, headers, published_at) VALUES ($1, $2, $3)`, [
          Buffer.from(payload),
          hdrs,
          Date.now(),
        ]),
    };
  },
);

// ---- nats -------------------------------------------------------------------------------------
await pair(
  'nats pubsub',
  () => driverCell('pubsub', createNatsDriver({ endpoint: env.nats, namespace: ns })),
  async () => {
    const nc = await natsConnect({ servers: env.nats });
    const subject = `raw.${topic()}`;
    return {
      start: async (on) => {
        const sub = nc.subscribe(subject, { callback: () => on() });
        await nc.flush();
        return async () => {
          sub.unsubscribe();
          await nc.close();
        };
      },
      publish: async () => {
        const h = natsHeaders();
        for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
        nc.publish(subject, payload, { headers: h });
      },
    };
  },
);
await pair(
  'nats queue',
  () => driverCell('queue', createNatsDriver({ endpoint: env.nats, namespace: ns })),
  async () => {
    const nc = await natsConnect({ servers: env.nats });
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const stream = `RAW_${randomUUID().slice(0, 8)}`;
    const subject = `raw.${stream}`;
    await jsm.streams.add({ name: stream, subjects: [subject] });
    await jsm.consumers.add(stream, {
      durable_name: 'g',
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(30_000),
    });
    return {
      start: async (on) => {
        const consumer = await js.consumers.get(stream, 'g');
        const messages = await consumer.consume({ max_messages: 32, expires: 2_000 });
        const loop = (async () => {
          for await (const m of messages) {
            await m.ackAck();
            on();
          }
        })();
        return async () => {
          await messages.close();
          await loop;
          await jsm.streams.delete(stream);
          await nc.close();
        };
      },
      publish: async () => {
        const h = natsHeaders();
        for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
        await js.publish(subject, payload, { headers: h });
      },
    };
  },
);

// ---- kafka ------------------------------------------------------------------------------------
const kafkaTimings = { sessionTimeoutMs: 6000, rebalanceTimeoutMs: 3000, heartbeatIntervalMs: 500 };
await pair(
  'kafka queue',
  () =>
    driverCell(
      'queue',
      createKafkaDriver({
        endpoint: `kafka://${env.kafka.join(',')}`,
        namespace: ns,
        kafka: kafkaTimings,
      }),
    ),
  async () => {
    // The same work by hand: acks=all sends with headers; a group consumer committing each offset.
    const kafka = new Kafka({ clientId: 'bench-raw', brokers: env.kafka, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const t = `raw.${topic()}`;
    await admin.createTopics({ topics: [{ topic: t, numPartitions: 3 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    const consumer = kafka.consumer({
      groupId: `raw-${randomUUID()}`,
      sessionTimeout: 6000,
      rebalanceTimeout: 3000,
      heartbeatInterval: 500,
      maxWaitTimeInMs: 750,
    });
    return {
      start: async (on) => {
        await consumer.connect();
        await consumer.subscribe({ topic: t, fromBeginning: true });
        const joined = new Promise((r) => consumer.on(consumer.events.GROUP_JOIN, r));
        await consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            await consumer.commitOffsets([
              { topic: t, partition, offset: (BigInt(message.offset) + 1n).toString() },
            ]);
            on();
          },
        });
        await joined;
        return async () => {
          await consumer.disconnect();
          await producer.disconnect();
          await admin.deleteTopics({ topics: [t] }).catch(() => undefined);
          await admin.disconnect();
        };
      },
      publish: () =>
        producer.send({
          topic: t,
          acks: -1,
          messages: [{ value: Buffer.from(payload), headers: hdrs, timestamp: String(Date.now()) }],
        }),
    };
  },
);

console.log(
  `\n${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(
      ' ',
    )}, node ${process.version}, budget ${BUDGET_MS} ms, window ${WINDOW}, payload ${payload.length} B`,
);
process.exit(0);
