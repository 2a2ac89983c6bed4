#!/usr/bin/env node
// Publish → consume through the proxy (grpc-js DataClient): subscribe to a consumer group, wait for
// a probe message to arrive (bounded), then publish --count messages with at most --window in flight
// and acknowledge every delivery. Stops after --budget s whatever happened. Prints one JSON line.
//   node bench/proxy/messaging.js --endpoint 127.0.0.1:PORT --namespace NS [--count 2000]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DataClient } from '../../dist/client/data-client.js';
import { percentile, sleep } from './lib.js';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    namespace: { type: 'string' },
    group: { type: 'string', default: 'bench' },
    count: { type: 'string', default: '2000' },
    window: { type: 'string', default: '32' },
    size: { type: 'string', default: '256' },
    budget: { type: 'string', default: '20' },
    'probe-timeout': { type: 'string', default: '40' },
    'max-in-flight': { type: 'string', default: '256' },
  },
});
const count = Number(values.count);
const client = new DataClient(values.endpoint, { namespace: values.namespace, timeoutMs: 10_000 });
const payload = new Uint8Array(Number(values.size)).fill(97);
const sentAt = new Map();
const latencies = [];
let probeSeen = false;
let received = 0;
let duplicates = 0;
let ackErrors = 0;
let streamError;
let lastReceipt = 0;
const seen = new Set();
let allReceived;
const everything = new Promise((r) => (allReceived = r));

const stream = client.subscribe({ group: values.group, maxInFlight: Number(values['max-in-flight']) });
stream.on('error', (err) => (streamError = err.details ?? err.message));
stream.on('data', (delivery) => {
  const id = delivery.message?.correlationId ?? '';
  client
    .acknowledge({ subscriptionId: delivery.subscriptionId, deliveryId: delivery.deliveryId, success: true })
    .catch(() => ackErrors++);
  if (id.startsWith('probe')) {
    probeSeen = true;
    return;
  }
  const start = sentAt.get(id);
  if (start === undefined) return;
  if (seen.has(id)) {
    duplicates++;
    return;
  }
  seen.add(id);
  lastReceipt = performance.now();
  latencies.push(lastReceipt - start);
  if (++received === count) allReceived();
});

// The group may take a while to join (Kafka rebalance): probe until one arrives.
const probeDeadline = performance.now() + Number(values['probe-timeout']) * 1000;
let probes = 0;
const probeStart = performance.now();
while (!probeSeen && performance.now() < probeDeadline && !streamError) {
  await client.publish({ payload, correlationId: `probe-${probes++}` }).catch(() => {});
  for (let i = 0; i < 10 && !probeSeen; i++) await sleep(50);
}
const joinMs = performance.now() - probeStart;

let published = 0;
let publishErrors = 0;
let next = 0;
const t0 = performance.now();
const budgetEnd = t0 + Number(values.budget) * 1000;
let publishEnd = t0;
if (probeSeen) {
  await Promise.all(
    Array.from({ length: Number(values.window) }, async () => {
      while (next < count && performance.now() < budgetEnd) {
        const id = `m-${next++}`;
        sentAt.set(id, performance.now());
        try {
          await client.publish({ payload, correlationId: id });
          published++;
        } catch {
          publishErrors++;
        }
      }
    }),
  );
  publishEnd = performance.now();
  await Promise.race([everything, sleep(Math.max(0, budgetEnd - performance.now()))]);
}
stream.cancel();
latencies.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    msg: 'result',
    namespace: values.namespace,
    joined: probeSeen,
    joinMs: Math.round(joinMs),
    streamError,
    published,
    publishErrors,
    publishPerSec: +(published / ((publishEnd - t0) / 1000 || 1)).toFixed(0),
    received,
    duplicates,
    ackErrors,
    consumePerSec: received ? +(received / ((lastReceipt - t0) / 1000)).toFixed(0) : 0,
    e2eP50ms: +percentile(latencies, 50).toFixed(2),
    e2eP99ms: +percentile(latencies, 99).toFixed(2),
  }),
);
client.close();
process.exit(0);
