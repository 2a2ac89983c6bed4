#!/usr/bin/env node
// Benchmark (not a test): publish → consume through the proxy's PublishStream and Consume next to
// the backend's raw client doing batched work, in the same run (issue 15, goal: stream ≥ 0.7 of
// raw on NATS and Kafka, ≥ 5,000 msg/s). Rounds interleave the cells; figures are medians.
//
//   npm run build && eval "$(bash scripts/test-services.sh env)"
//   node bench/proxy/stream.js [--count 20000] [--rounds 3] [--warmup-rounds 1] [--batch 32] [--backends nats,kafka] [--raw-kafka driver|plain] [--raw-kafkajs stock|as-driver] [--v8-flags=...] [--no-go-anchor] [--json out.json]
//
// raw NATS:   js.publish with up to 256 awaiting their ack; pull consumer, ack (no ackAck) per msg.
// raw Kafka:  producer.send of 32 messages (acks=all), sends back to back, from an idempotent
//             producer with one request in flight to the first of 3 partitions, as the Kafka
//             driver produces (the delivery contract needs the idempotence); eachBatch consumer
//             committing once per batch.
// Raw messages carry the headers a Prism envelope would (message id, namespace, time, session).
// stream:     one PublishStream (window 1024) into a producer with batch_size --batch and
//             batch_interval 2ms; one Consume (max_in_flight 1024) acknowledging what arrived,
//             once per event-loop turn. One unary Publish to the topic goes first, not timed.
// go (Kafka): the stream cell's client and settings against go-anchor/kafkarelay, a minimal grpc-go →
//             franz-go proxy (idempotent producer, acks=all, one request in flight of at most --batch
//             records gathered for at most 2 ms, as the stream's producer; commits below
//             the lowest unacknowledged delivery), built when a Go toolchain exists.
// Rate = messages / (first publish → last message received); each cell also prints when the first
// delivery came, when publishing ended, the longest pause between deliveries and the time of every
// tenth of the messages. CPU of the proxy process and of this
// process is printed for each cell.
/* global setImmediate */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { URL } from 'node:url';
import { parseArgs } from 'node:util';
import { connect as natsConnect, headers as natsHeaders, nanos } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import kafkajs from 'kafkajs';
import { DataClient } from '../../dist/client/data-client.js';
import {
  buildGo,
  cpuSeconds,
  listenerPid,
  loadAverage,
  machine,
  processTree,
  ROOT,
  sleep,
  startProcess,
} from './lib.js';

const { Kafka, logLevel } = kafkajs;
const { values } = parseArgs({
  allowNegative: true,
  options: {
    count: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    // Rounds run first and not counted: the proxy process and the raw client's JIT, and the broker,
    // start cold (goals.js runs a new stream.js, so a new proxy, for each of its rounds).
    'warmup-rounds': { type: 'string', default: '1' },
    batch: { type: 'string', default: '32' },
    size: { type: 'string', default: '256' },
    backends: { type: 'string', default: 'nats,kafka' },
    budget: { type: 'string', default: '30' },
    json: { type: 'string' },
    // 'driver' (default): the raw producer is idempotent with one request in flight, as the
    // driver must be; 'plain': kafkajs's defaults (not idempotent, 1 partition), the baseline of
    // the runs before 2026-12-03 18:00 UTC, which pays for no delivery guarantee.
    'raw-kafka': { type: 'string', default: 'driver' },
    // 'stock' (default): the raw client is kafkajs 2.2.4 as published; 'as-driver': with the Kafka
    // driver's fixes applied to it too (src/drivers/kafka/kafkajs-fixes.ts), as the proxy has them.
    'raw-kafkajs': { type: 'string', default: 'stock' },
    // `proxy serve --v8-flags` (default: proxy serve's own).
    'v8-flags': { type: 'string' },
    // The Go anchor for Kafka (go-anchor/kafkarelay, built when a Go toolchain exists): the same
    // stream cell against a minimal grpc-go → franz-go proxy. --no-go-anchor leaves it out.
    'go-anchor': { type: 'boolean', default: true },
  },
});
const RAW_KAFKA_AS_DRIVER = values['raw-kafka'] !== 'plain';
if (values['raw-kafkajs'] === 'as-driver') {
  const { fixKafkajs } = await import('../../dist/drivers/kafka/kafkajs-fixes.js');
  if (!fixKafkajs()) throw new Error('--raw-kafkajs as-driver: kafkajs is not 2.2.4');
} else if (values['raw-kafkajs'] !== 'stock') throw new Error(`--raw-kafkajs ${values['raw-kafkajs']}?`);
const COUNT = Number(values.count);
const BUDGET_MS = Number(values.budget) * 1000;
const payload = new Uint8Array(Number(values.size)).fill(97);
const backends = values.backends.split(',');
const env = {
  nats: process.env.PRISM_TEST_NATS_URL ?? 'nats://127.0.0.1:4222',
  kafka: (process.env.PRISM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
  redis: process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
};
// What a Prism envelope puts in the backend's headers (src/runners/envelope.ts), so the raw cells
// carry the same bytes per message.
const envelopeHeaders = () => ({
  'prism-message-id': randomUUID(),
  'prism-namespace': 'stream-bench',
  'prism-published-at-ms': String(Date.now()),
  'prism-session-subject': 'anonymous',
  'prism-session-tenant': '',
  'prism-session-roles': '',
});
const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);
const runId = Date.now().toString(36);

// ---- the proxy -----------------------------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'prism-bench-stream-'));
mkdirSync(join(work, 'ns'));
writeFileSync(
  join(work, 'backends.yaml'),
  [
    'backends:',
    `  nats: [{ name: bench, endpoint: "${env.nats}" }]`,
    `  kafka: [{ name: bench, endpoint: "kafka://${env.kafka.join(',')}" }]`,
    `  redis: [{ name: bench, endpoint: "${env.redis}" }]`,
    '  memstore: [{ name: bench, endpoint: "memory://" }]',
    '',
  ].join('\n'),
);
for (const backend of backends) {
  writeFileSync(
    join(work, 'ns', `${backend}.yaml`),
    [
      `namespace: stream-${backend}`,
      'team: bench',
      ...(backend === 'redis' ? ['needs: { retention: 1h }'] : []),
      'patterns:',
      '  - name: events',
      '    type: producer',
      `    slots: { sink: { backend: ${backend} } }`,
      `    settings: { topic: s${runId}, batch_size: ${values.batch}, batch_interval: 2ms, max_retries: 3 }`,
      '  - name: worker',
      '    type: consumer',
      `    slots: { source: { backend: ${backend} } }`,
      `    settings: { topic: s${runId}, consumer_group: bench, ack_timeout: 30s }`,
      '',
    ].join('\n'),
  );
}
const proxy = await startProcess(
  process.execPath,
  [
    join(ROOT, 'bin/run.js'),
    ...['proxy', 'serve', '--namespaces', join(work, 'ns'), '--backends', join(work, 'backends.yaml')],
    ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
    ...(values['v8-flags'] !== undefined ? [`--v8-flags=${values['v8-flags']}`] : []),
  ],
  'prism proxy serving',
  {
    env: {
      PRISM_HOME: work,
      ...(process.env.BENCH_PROXY_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_PROXY_NODE_OPTIONS } : {}),
    },
  },
);
const endpoint = `127.0.0.1:${proxy.ready.port}`;
const proxyPid = proxy.child.pid;

// The Go anchor, for Kafka only.
const goRelayBin =
  values['go-anchor'] && backends.includes('kafka')
    ? await buildGo('./kafkarelay', 'kafkarelay', log)
    : undefined;
if (values['go-anchor'] && backends.includes('kafka') && !goRelayBin)
  log('no Go toolchain: the Go anchor (go-anchor/kafkarelay) is left out');
const goRelay = goRelayBin
  ? await startProcess(
      goRelayBin,
      ['-listen', '127.0.0.1:0', '-brokers', env.kafka.join(','), '-batch', values.batch, '-linger', '2ms'],
      'bench server ready',
    )
  : undefined;
// A cell that throws ends this process: its servers go with it rather than linger.
process.on('exit', () => {
  proxy.child.kill();
  goRelay?.child.kill();
});

/** The backend server's process (not ours: its CPU is told apart), by the port it listens on. */
const backendPid = {
  nats: listenerPid(new URL(env.nats).port || '4222'),
  kafka: listenerPid(env.kafka[0].split(':').at(-1)),
};

/** Runs a cell: `start(onMessage)` opens the consumer, `publishAll()` sends COUNT messages. */
async function measure(cell, backend, servingPid = proxyPid) {
  const server = backendPid[backend] ? [backendPid[backend]] : [];
  let received = 0;
  let first = 0;
  let last = 0;
  let gap = { ms: 0, after: 0 };
  const tenths = [];
  let t0 = 0; // set when the first publish starts
  let done;
  const all = new Promise((r) => (done = r));
  const stop = await cell.start(() => {
    const now = performance.now();
    if (received === 0) first = now;
    else if (now - last > gap.ms) gap = { ms: now - last, after: received };
    last = now;
    received++;
    if (received * 10 >= COUNT * (tenths.length + 1)) tenths.push(Math.round(now - t0));
    if (received === COUNT) done();
  });
  const cpu0 = cpuSeconds(processTree(servingPid));
  const server0 = cpuSeconds(server);
  const self0 = process.cpuUsage();
  t0 = performance.now();
  await cell.publishAll();
  const published = performance.now();
  await Promise.race([all, sleep(BUDGET_MS)]);
  const proxyCpu = cpuSeconds(processTree(servingPid)) - cpu0;
  const serverCpu = cpuSeconds(server) - server0;
  const self = process.cpuUsage(self0);
  await stop();
  const seconds = (last - t0) / 1000;
  return {
    received,
    rate: received ? Math.round(received / seconds) : 0,
    publishRate: Math.round(COUNT / ((published - t0) / 1000)),
    // Where the cell's time goes: the first delivery and the publisher's end after the first
    // publish, and the longest pause between two deliveries (after how many).
    firstMs: received ? Math.round(first - t0) : null,
    publishedMs: Math.round(published - t0),
    lastMs: received ? Math.round(last - t0) : null,
    longestGapMs: Math.round(gap.ms),
    longestGapAfter: gap.after,
    tenths,
    proxyCpuPerMsgUs: received ? Math.round((proxyCpu / received) * 1e6) : 0,
    clientCpuPerMsgUs: received ? Math.round(((self.user + self.system) / received) * 1) : 0,
    backendCpuPerMsgUs: received && server.length ? Math.round((serverCpu / received) * 1e6) : null,
  };
}

// ---- cells ---------------------------------------------------------------------------------------
function streamCell(backend, at = endpoint) {
  const client = new DataClient(at, { namespace: `stream-${backend}`, timeoutMs: 30_000 });
  const topic = `t${randomUUID().slice(0, 8)}`;
  return {
    async start(on) {
      const consumer = client.consume({ topic, group: 'bench', maxInFlight: 1024 });
      consumer.on('error', () => undefined);
      let pending = [];
      let scheduled = false;
      // The first message to a topic pays the producer's one-time setup for it (the Kafka driver
      // asks the broker for the topic and its metadata, 150-200 ms here), which the raw cells do
      // before they are timed: one message goes through first, acknowledged and not counted.
      let primed;
      const primedOnce = new Promise((resolve) => (primed = resolve));
      consumer.on('data', (res) => {
        for (const d of res.deliveries) {
          pending.push(d.deliveryId);
          if (primed) {
            primed();
            primed = undefined;
          } else on();
        }
        if (!scheduled) {
          scheduled = true;
          setImmediate(() => {
            scheduled = false;
            client.ack(consumer, pending);
            pending = [];
          });
        }
      });
      // Kafka: the group joins before anything is published (a new group starts at the end).
      await sleep(backend === 'kafka' ? 5_000 : 500);
      await client.publish({ topic, payload });
      await primedOnce;
      return async () => {
        consumer.cancel();
        client.close();
      };
    },
    async publishAll() {
      const writer = client.publishStream();
      for (let i = 0; i < COUNT; i++) {
        await writer.ready();
        writer.publish({ topic, payload }).catch(() => undefined);
      }
      await writer.end();
    },
  };
}

async function rawNats() {
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
    async start(on) {
      const consumer = await js.consumers.get(stream, 'g');
      const messages = await consumer.consume({ max_messages: 256, expires: 2_000 });
      const loop = (async () => {
        for await (const m of messages) {
          m.ack();
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
    async publishAll() {
      const acks = [];
      for (let i = 0; i < COUNT; i++) {
        if (i >= 256) await acks[i - 256];
        const h = natsHeaders();
        for (const [k, v] of Object.entries(envelopeHeaders())) h.set(k, v);
        acks.push(js.publish(subject, payload, { headers: h }));
      }
      await Promise.all(acks);
    },
  };
}

async function rawKafka() {
  const kafka = new Kafka({ clientId: 'bench-raw', brokers: env.kafka, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = `raw.${randomUUID().slice(0, 8)}`;
  // As the driver: 3 partitions, messages without a key in the first one.
  await admin.createTopics({
    topics: [{ topic, numPartitions: RAW_KAFKA_AS_DRIVER ? 3 : 1 }],
    waitForLeaders: true,
  });
  const producer = kafka.producer(RAW_KAFKA_AS_DRIVER ? { idempotent: true, maxInFlightRequests: 1 } : {});
  await producer.connect();
  const consumer = kafka.consumer({
    groupId: `raw-${randomUUID()}`,
    sessionTimeout: 6000,
    rebalanceTimeout: 3000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100,
  });
  return {
    async start(on) {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const joined = new Promise((r) => consumer.on(consumer.events.GROUP_JOIN, r));
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (let i = 0; i < batch.messages.length; i++) on();
          const lastOffset = batch.messages.at(-1)?.offset;
          if (lastOffset !== undefined)
            await consumer.commitOffsets([
              { topic, partition: batch.partition, offset: (BigInt(lastOffset) + 1n).toString() },
            ]);
        },
      });
      await joined;
      return async () => {
        await consumer.disconnect();
        await producer.disconnect();
        await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
        await admin.disconnect();
      };
    },
    async publishAll() {
      const batch = Number(values.batch);
      for (let i = 0; i < COUNT; i += batch) {
        const n = Math.min(batch, COUNT - i);
        await producer.send({
          topic,
          acks: -1,
          messages: Array.from({ length: n }, () => ({
            ...(RAW_KAFKA_AS_DRIVER ? { partition: 0 } : {}),
            value: Buffer.from(payload),
            headers: envelopeHeaders(),
          })),
        });
      }
    },
  };
}

const RAW = { nats: rawNats, kafka: rawKafka };

// ---- run -----------------------------------------------------------------------------------------
const loadBefore = loadAverage();
const results = {};
for (let round = -Number(values['warmup-rounds']); round < Number(values.rounds); round++) {
  for (const backend of backends) {
    for (const [kind, make, servingPid] of [
      ['stream', async () => streamCell(backend)],
      ...(backend === 'kafka' && goRelay
        ? [['go', async () => streamCell(backend, `127.0.0.1:${goRelay.ready.port}`), goRelay.child.pid]]
        : []),
      ...(RAW[backend] ? [['raw', RAW[backend]]] : []),
    ]) {
      const r = await measure(await make(), backend, servingPid);
      if (round >= 0) ((results[backend] ??= {})[kind] ??= []).push(r);
      log(
        `${round >= 0 ? `round ${round + 1}` : 'warm-up (not counted)'} ${backend} ${kind}: ${JSON.stringify(r)}`,
      );
    }
  }
}
await proxy.stop();
await goRelay?.stop();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`machine: ${JSON.stringify(machine())}, load before ${loadBefore}, after ${loadAverage()}`);
console.log(
  `${COUNT} messages of ${values.size} bytes per cell, batch ${values.batch}, ${values.rounds} interleaved rounds ` +
    `after ${values['warmup-rounds']} not counted, medians; ` +
    `raw kafkajs ${values['raw-kafkajs']}`,
);
for (const [backend, kinds] of Object.entries(results)) {
  const s = kinds.stream;
  const r = kinds.raw;
  const line = (k, xs) =>
    `${backend.padEnd(6)} ${k.padEnd(7)} ${String(median(xs.map((x) => x.rate))).padStart(7)} msg/s  received ${median(xs.map((x) => x.received))}/${COUNT}  proxy CPU ${median(xs.map((x) => x.proxyCpuPerMsgUs))} µs/msg  client CPU ${median(xs.map((x) => x.clientCpuPerMsgUs))} µs/msg  ${backend} server CPU ${median(xs.map((x) => x.backendCpuPerMsgUs ?? NaN))} µs/msg`;
  const g = kinds.go;
  const ratio = (a, b) => (median(a.map((x) => x.rate)) / median(b.map((x) => x.rate))).toFixed(2);
  console.log(line('stream', s));
  if (g) console.log(line('go', g).replace('proxy CPU', 'Go anchor CPU'));
  if (r) {
    console.log(line('raw', r));
    console.log(`${backend.padEnd(6)} ratio   stream / raw = ${ratio(s, r)}`);
  }
  if (g)
    console.log(
      `${backend.padEnd(6)} ratio   stream / Go anchor = ${ratio(s, g)}${r ? `, Go anchor / raw = ${ratio(g, r)}` : ''}`,
    );
}
if (values.json)
  writeFileSync(
    values.json,
    JSON.stringify(
      { machine: machine(), loadBefore, loadAfter: loadAverage(), count: COUNT, results },
      null,
      2,
    ),
  );
process.exit(0);
