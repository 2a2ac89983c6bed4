#!/usr/bin/env node
/* global setImmediate */
// Benchmark (not a test): the Kafka client libraries for the producer's batched send, in one run,
// contenders interleaved round by round: kafkajs (the driver's client) and @platformatic/kafka
// (pure JavaScript). Each cell sends --count messages of --size bytes with the four envelope
// headers a Prism message carries, in batches of --batch (acks=all), one batch after another as
// the producer runner sends them, to a topic of its own, then reads them back from the beginning
// with a new consumer group committing once per fetched batch; it prints messages/s and this
// process's CPU per message of each phase. @confluentinc/kafka-javascript (librdkafka, a native
// addon) is not measured yet.
//
// @platformatic/kafka is not a dependency of Prism: install it beside the tree for the run,
//   npm install --no-save @platformatic/kafka@2.12.1
//   eval "$(bash scripts/test-services.sh env)"; node bench/drivers/kafka-clients.js [--rounds 3]
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '16000' },
    size: { type: 'string', default: '256' },
    batch: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
  },
});
const N = Number(values.count);
const B = Number(values.batch);
const payload = Buffer.alloc(Number(values.size), 120);
const brokers = (process.env.PRISM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092')
  .replace(/^kafka:\/\//, '')
  .split(',');
const headers = {
  'prism-message-id': '0193a0b2-aaaa-7bbb-8ccc-123456789abc',
  'prism-namespace': 'bench',
  'prism-published-at': '1733200000000',
  'prism-subject': 'anonymous',
};
let platformatic;
try {
  platformatic = await import('@platformatic/kafka');
} catch {
  console.error('@platformatic/kafka is not installed: npm install --no-save @platformatic/kafka@2.12.1');
  process.exit(2);
}
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const run = Date.now().toString(36);

const contenders = {
  async kafkajs(topic) {
    const producer = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING }).producer({
      allowAutoTopicCreation: true,
    });
    await producer.connect();
    return {
      send: (n) =>
        producer.send({
          topic,
          acks: -1,
          messages: Array.from({ length: n }, () => ({ value: payload, headers })),
        }),
      // As the raw cell of bench/proxy/stream.js: eachBatch, one commit per fetched batch.
      async consume(n) {
        const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
        const consumer = kafka.consumer({ groupId: `bench-${topic}`, maxWaitTimeInMs: 100 });
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        let received = 0;
        let done;
        const all = new Promise((r) => (done = r));
        await consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            for (const message of batch.messages) if (message.headers['prism-namespace']) received++;
            const last = batch.messages.at(-1);
            if (last)
              await consumer.commitOffsets([
                { topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
              ]);
            if (received >= n) done();
          },
        });
        await all;
        await consumer.disconnect();
      },
      close: () => producer.disconnect(),
    };
  },
  async platformatic(topic) {
    const producer = new platformatic.Producer({
      clientId: 'bench',
      bootstrapBrokers: brokers,
      acks: -1,
      autocreateTopics: true,
    });
    const h = new Map(Object.entries(headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]));
    return {
      send: (n) =>
        producer.send({ messages: Array.from({ length: n }, () => ({ topic, value: payload, headers: h })) }),
      // One commit per burst of messages read in one turn of the event loop (≈ per fetch).
      async consume(n) {
        const consumer = new platformatic.Consumer({
          clientId: 'bench',
          groupId: `bench-${topic}`,
          bootstrapBrokers: brokers,
          maxWaitTime: 100,
        });
        const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
        let received = 0;
        let last;
        let done;
        const all = new Promise((r) => (done = r));
        stream.on('data', (message) => {
          if (message.headers.size > 0) received++;
          if (!last)
            setImmediate(() => {
              const m = last;
              last = undefined;
              void m.commit();
            });
          last = message;
          if (received >= n) done();
        });
        await all;
        await stream.close();
        await consumer.close();
      },
      close: () => producer.close(),
    };
  },
};

const results = {};
for (let round = 1; round <= Number(values.rounds); round++) {
  for (const [name, make] of Object.entries(contenders)) {
    const client = await make(`bench-kafka-clients-${name}-${run}-${round}`);
    await client.send(1); // the topic exists and the connections are warm
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let sent = 0; sent < N; sent += B) await client.send(Math.min(B, N - sent));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpu1 = process.cpuUsage();
    const t1 = performance.now();
    await client.consume(N);
    const consumeSeconds = (performance.now() - t1) / 1000;
    const consumeCpu = process.cpuUsage(cpu1);
    await client.close();
    const r = {
      msgPerSec: Math.round(N / seconds),
      cpuUsPerMsg: +((cpu.user + cpu.system) / N).toFixed(1),
      consumeMsgPerSec: Math.round(N / consumeSeconds),
      consumeCpuUsPerMsg: +((consumeCpu.user + consumeCpu.system) / N).toFixed(1),
    };
    (results[name] ??= []).push(r);
    console.error(
      `round ${round} ${name.padEnd(12)} produce ${r.msgPerSec} msg/s, ${r.cpuUsPerMsg} µs CPU/msg; ` +
        `consume ${r.consumeMsgPerSec} msg/s, ${r.consumeCpuUsPerMsg} µs CPU/msg (load ${load()})`,
    );
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = (name, f) => median(results[name].map((r) => r[f]));
console.log(
  `batches of ${B} × ${values.size} B, acks=all, medians of ${values.rounds} rounds: kafkajs ${m('kafkajs', 'msgPerSec')} msg/s ` +
    `(${m('kafkajs', 'cpuUsPerMsg')} µs CPU/msg), @platformatic/kafka ${m('platformatic', 'msgPerSec')} msg/s ` +
    `(${m('platformatic', 'cpuUsPerMsg')} µs CPU/msg); platformatic ÷ kafkajs ${(m('platformatic', 'msgPerSec') / m('kafkajs', 'msgPerSec')).toFixed(2)}`,
);
console.log(
  `consume from the beginning, a commit per fetched batch, medians: kafkajs ${m('kafkajs', 'consumeMsgPerSec')} msg/s ` +
    `(${m('kafkajs', 'consumeCpuUsPerMsg')} µs CPU/msg), @platformatic/kafka ${m('platformatic', 'consumeMsgPerSec')} msg/s ` +
    `(${m('platformatic', 'consumeCpuUsPerMsg')} µs CPU/msg)`,
);
