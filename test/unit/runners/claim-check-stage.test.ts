/**
 * The claim-check stage through real producer and consumer runners on memstore (sink, source and
 * objects slot): what travels, what the subscriber gets, and what happens when the store fails.
 * The same contract against SeaweedFS and Kafka/NATS/Redis is test/e2e/claim-check.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import {
  BackendDownError,
  type AnyDriver,
  type Delivery,
  type ObjectStore,
} from '../../../src/drivers/interfaces.js';
import type { DriverFactory } from '../../../src/runners/slots.js';
import { createDriver } from '../../../src/drivers/registry.js';
import type { CreateRunnerOptions } from '../../../src/runners/create-runner.js';
import type { ConsumerRunner } from '../../../src/runners/consumer/runner.js';
import type { ProducerRunner } from '../../../src/runners/producer/runner.js';
import type { ConsumerDelivery } from '../../../src/runners/types.js';
import { isPrismError } from '../../../src/errors.js';
import {
  ClaimCheckSettingSchema,
  NamespaceRequestSchema,
  PatternSchema,
  PatternSettingsSchema,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { consumingGroups, markerName } from '../../../src/runners/payload/claim-check-stage.js';
import { ALICE, buildRunner, eventually, flakyFactory, memoryLogger, uniqueNamespace } from './helpers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const TOPIC = 'files.in';
const THRESHOLD = 4096;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

type ClaimSetting = { threshold?: string; compression?: string; ttl?: string };

/** The consumer patterns the producer's namespace declares on TOPIC, by consumer group. */
const consumersOf = (...groups: string[]) =>
  groups.map((group) => ({
    name: group,
    type: 'consumer',
    settings: { topic: TOPIC, consumerGroup: group },
  }));

async function producer(
  ns: string,
  claim: ClaimSetting,
  options: CreateRunnerOptions = {},
  groups: readonly string[] = [],
): Promise<ProducerRunner> {
  const runner = buildRunner<ProducerRunner>(
    {
      type: 'producer',
      namespace: ns,
      slots: { sink: 'memstore', objects: 'memstore' },
      settings: { topic: TOPIC, claimCheck: create(ClaimCheckSettingSchema, claim) },
      others: consumersOf(...groups),
    },
    options,
  );
  await runner.start();
  cleanup.push(() => runner.stop());
  return runner;
}

async function consumer(
  ns: string,
  options: CreateRunnerOptions = {},
  maxRetries = 3,
  group = 'billing',
  /** What the subscriber does with each delivery; `hold` leaves it to the test. */
  settle: 'ack' | 'nack' | 'hold' = 'ack',
  ackTimeout?: string,
): Promise<ConsumerDelivery[]> {
  const runner = buildRunner<ConsumerRunner>(
    {
      type: 'consumer',
      name: group,
      namespace: ns,
      slots: { source: 'memstore', objects: 'memstore', 'dead-letter': 'memstore' },
      settings: {
        topic: TOPIC,
        consumerGroup: group,
        maxRetries,
        claimCheck: create(ClaimCheckSettingSchema),
        ...(ackTimeout !== undefined ? { ackTimeout } : {}),
      },
    },
    {
      logger: memoryLogger(),
      ...options,
      consumer: { retry: { baseDelayMs: 1, maxDelayMs: 5 }, pubsubRedeliveryDelayMs: 5, ...options.consumer },
    },
  );
  await runner.start();
  cleanup.push(() => runner.stop());
  const seen: ConsumerDelivery[] = [];
  await runner.subscribe({}, async (d) => {
    seen.push(d);
    if (settle === 'ack') await d.ack();
    else if (settle === 'nack') await d.nack('refused by the test');
  });
  return seen;
}

/** What reached a memstore topic, as a plain consumer of the backend sees it. */
async function drain(ns: string, topic: string): Promise<Delivery[]> {
  const driver = await createDriver('memstore', { endpoint: 'memory://', namespace: ns });
  await driver.connect();
  const got: Delivery[] = [];
  const sub = await driver.consume!(topic, `probe-${topic}`, async (d) => {
    got.push(d);
    await d.ack();
  });
  cleanup.push(async () => {
    await sub.close();
    await driver.close();
  });
  return got;
}

async function objects(ns: string): Promise<ObjectStore> {
  const driver = await createDriver('memstore', { endpoint: 'memory://', namespace: ns });
  await driver.connect();
  return driver as unknown as ObjectStore;
}

describe('claim check', () => {
  it('delivers payloads on both sides of the threshold byte-exact with their content type, storing only those above it', async () => {
    const ns = uniqueNamespace('claim');
    const raw = await drain(ns, TOPIC);
    const seen = await consumer(ns);
    const runner = await producer(ns, { threshold: `${THRESHOLD}B` });
    const sizes = [0, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 2 * 1024 * 1024];
    const payloads = sizes.map((n) => randomBytes(n));
    for (const [i, payload] of payloads.entries()) {
      await runner.publish({ payload, contentType: `application/x-test-${i}` }, ALICE);
    }
    await eventually(
      () => seen.length === sizes.length && raw.length === sizes.length,
      5000,
      'the deliveries',
    );

    for (const [i, payload] of payloads.entries()) {
      const got = seen.find((d) => d.envelope.contentType === `application/x-test-${i}`)!;
      expect(Buffer.from(got.envelope.payload).equals(payload), `payload ${sizes[i]}`).toBe(true);
      expect(Object.keys(got.envelope.headers).filter((h) => h.startsWith('prism-'))).toEqual([]);
    }
    const travelled = (i: number) =>
      raw.find((d) => d.headers['prism-message-id'] === seen[i]!.envelope.messageId)!;
    // At or under the threshold: inline and untouched.
    for (const i of [0, 1, 2]) {
      expect(travelled(i).payload.byteLength).toBe(sizes[i]);
      expect(travelled(i).headers['prism-claim-key']).toBeUndefined();
    }
    // Above it: an empty payload and a claim; the object holds the bytes under their SHA-256 and
    // the message id. No consumer pattern is declared, so no group is listed: the object stays.
    for (const i of [3, 4]) {
      const message = travelled(i);
      expect(message.payload.byteLength).toBe(0);
      expect(message.headers['prism-claim-groups']).toBeUndefined();
      expect(message.headers).toMatchObject({
        'prism-claim-store': 'memstore',
        'prism-claim-key': `claims/${sha256(payloads[i]!)}/${seen[i]!.envelope.messageId}`,
        'prism-claim-size': String(sizes[i]),
        'prism-claim-checksum': `sha256:${sha256(payloads[i]!)}`,
        'prism-claim-encoding': 'identity',
        'prism-claim-content-type': `application/x-test-${i}`,
        'prism-content-type': 'application/vnd.prism.claim-check',
      });
      const stored = await (await objects(ns)).getObject(message.headers['prism-claim-key']!);
      expect(Buffer.from(stored!).equals(payloads[i]!)).toBe(true);
    }
  });

  it.each([
    ['gzip', '.gz', 'gzip'],
    ['zstd', '.zst', 'zstd'],
  ])('compresses stored payloads with %s and restores them', async (compression, suffix, encoding) => {
    const ns = uniqueNamespace('claim');
    const raw = await drain(ns, TOPIC);
    const seen = await consumer(ns);
    const payload = Buffer.from('a compressible line of text\n'.repeat(40_000));
    await (await producer(ns, { threshold: '1KiB', compression })).publish({ payload }, ALICE);
    await eventually(() => seen.length === 1 && raw.length === 1, 5000, 'the delivery');

    expect(Buffer.from(seen[0]!.envelope.payload).equals(payload)).toBe(true);
    expect(seen[0]!.envelope.contentType).toBe('');
    const key = raw[0]!.headers['prism-claim-key']!;
    expect(key).toBe(`claims/${sha256(payload)}/${seen[0]!.envelope.messageId}${suffix}`);
    expect(raw[0]!.headers['prism-claim-encoding']).toBe(encoding);
    const stored = (await (await objects(ns)).getObject(key))!;
    expect(stored.byteLength).toBeLessThan(payload.byteLength / 20);
    if (compression === 'gzip') expect(gunzipSync(stored).equals(payload)).toBe(true);
  });

  it('stores payloads above 512 KiB by default, 7 days, uncompressed', async () => {
    const ns = uniqueNamespace('claim');
    const raw = await drain(ns, TOPIC);
    const runner = await producer(ns, {});
    const before = Date.now();
    await runner.publish({ payload: randomBytes(512 * 1024) }, ALICE);
    await runner.publish({ payload: randomBytes(512 * 1024 + 1) }, ALICE);
    await eventually(() => raw.length === 2, 2000, 'the messages');
    expect(raw[0]!.payload.byteLength).toBe(512 * 1024);
    expect(raw[0]!.headers['prism-claim-key']).toBeUndefined();
    expect(raw[1]!.payload.byteLength).toBe(0);
    expect(raw[1]!.headers['prism-claim-encoding']).toBe('identity');
    const info = await (await objects(ns)).statObject(raw[1]!.headers['prism-claim-key']!);
    expect(info!.size).toBe(512 * 1024 + 1);
    expect(info!.expiresAtMs! - before).toBeGreaterThanOrEqual(7 * 86_400_000);
    expect(info!.expiresAtMs! - Date.now()).toBeLessThanOrEqual(7 * 86_400_000);
  });

  it('stores objects with the ttl, after which they read as missing', async () => {
    const ns = uniqueNamespace('claim');
    const raw = await drain(ns, TOPIC);
    const payload = randomBytes(10_000);
    const before = Date.now();
    await (await producer(ns, { threshold: '1KiB', ttl: '2d' })).publish({ payload }, ALICE);
    await eventually(() => raw.length === 1, 2000, 'the message');
    const info = await (await objects(ns)).statObject(raw[0]!.headers['prism-claim-key']!);
    expect(info!.expiresAtMs! - before).toBeGreaterThanOrEqual(2 * 86_400_000);
    expect(info!.expiresAtMs! - Date.now()).toBeLessThanOrEqual(2 * 86_400_000);
  });

  it('redelivers a message whose object store is down at delivery after a pause of ack_timeout, and the subscriber gets it once the store answers', async () => {
    const ns = uniqueNamespace('claim');
    const flaky = flakyFactory('objects', ['readObject'], 2);
    const seen = await consumer(ns, { driverFactory: flaky.factory }, 5, 'billing', 'ack', '400ms');
    const payload = randomBytes(50_000);
    const started = Date.now();
    await (await producer(ns, { threshold: '1KiB' })).publish({ payload }, ALICE);
    await eventually(() => seen.length === 1, 5000, 'the delivery');
    // Two failed fetches, each followed by a pause of ack_timeout before the redelivery.
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    expect(flaky.calls.readObject).toBe(3);
    expect(seen[0]!.envelope.attempt).toBe(3);
    expect(Buffer.from(seen[0]!.envelope.payload).equals(payload)).toBe(true);
  });

  it('redelivers a message whose object read breaks off midway, and the subscriber gets it whole once a read completes', async () => {
    const ns = uniqueNamespace('claim');
    let reads = 0;
    // The first read yields part of the object, then the store goes away.
    const factory: DriverFactory = async (backend, options, context) => {
      const driver = await createDriver(backend, options);
      if (context.slot !== 'objects') return driver;
      const store = driver as unknown as ObjectStore;
      const wrapped = Object.create(driver) as ObjectStore;
      wrapped.readObject = async (key) => {
        const reader = await store.readObject(key);
        if (reader === undefined || ++reads > 1) return reader;
        return {
          size: reader.size,
          chunks: (async function* () {
            for await (const chunk of reader.chunks) yield chunk.subarray(0, 1000);
            throw new BackendDownError(backend, `readObject ${key}: injected failure`);
          })(),
        };
      };
      return wrapped as unknown as AnyDriver;
    };
    const seen = await consumer(ns, { driverFactory: factory }, 5, 'billing', 'ack', '200ms');
    const payload = randomBytes(80_000);
    await (await producer(ns, { threshold: '1KiB' })).publish({ payload }, ALICE);
    await eventually(() => seen.length === 1, 5000, 'the delivery');
    expect(reads).toBe(2);
    expect(seen[0]!.envelope.attempt).toBe(2);
    expect(Buffer.from(seen[0]!.envelope.payload).equals(payload)).toBe(true);
  });

  it('fails a publish while the object store is down, sending nothing', async () => {
    const ns = uniqueNamespace('claim');
    const raw = await drain(ns, TOPIC);
    const flaky = flakyFactory('objects', ['putObject', 'putObjectStream'], 1);
    const runner = await producer(ns, { threshold: '1KiB' }, { driverFactory: flaky.factory });
    const err = await runner.publish({ payload: randomBytes(5000) }, ALICE).catch((e: unknown) => e);
    expect(isPrismError(err) && err.code).toBe('E_BACKEND_DOWN');
    await runner.publish({ payload: Buffer.from('small') }, ALICE);
    await eventually(() => raw.length === 1, 2000, 'the small message');
    expect(Buffer.from(raw[0]!.payload).toString()).toBe('small');
  });

  it('dead-letters a claim whose object is gone after max_retries, with the claim as it travelled', async () => {
    const ns = uniqueNamespace('claim');
    const dead = await drain(ns, `${TOPIC}.dead-letter`);
    const store = await objects(ns);
    const runner = await producer(ns, { threshold: '1KiB' });
    const payload = randomBytes(5000);
    // Delete the object between publish and delivery: publish first, then start the consumer.
    const { messageId } = await runner.publish({ payload }, ALICE);
    const key = `claims/${sha256(payload)}/${messageId}`;
    expect(await store.deleteObject(key)).toBe(true);
    const seen = await consumer(ns, {}, 2);
    await eventually(() => dead.length === 1, 5000, 'the dead letter');
    expect(seen).toEqual([]);
    expect(dead[0]!.payload.byteLength).toBe(0);
    expect(dead[0]!.headers['prism-claim-key']).toBe(key);
    expect(dead[0]!.headers['prism-dead-letter-reason']).toBe(
      `payload could not be opened: the claimed payload ${key} is not in the memstore store (expired after claim_check.ttl, or deleted)`,
    );
  });

  it('refuses to deliver an object whose bytes, or whose length, do not match the claim', async () => {
    const ns = uniqueNamespace('claim');
    const dead = await drain(ns, `${TOPIC}.dead-letter`);
    const store = await objects(ns);
    const runner = await producer(ns, { threshold: '1KiB' });
    const payload = randomBytes(5000);
    const tampered = Buffer.from(payload);
    tampered[0] = tampered[0]! ^ 0xff;
    // Altered, one byte longer, one byte shorter.
    const stored = [tampered, Buffer.concat([payload, Buffer.from([0])]), payload.subarray(1)];
    const keys: string[] = [];
    for (const bytes of stored) {
      const { messageId } = await runner.publish({ payload }, ALICE);
      const key = `claims/${sha256(payload)}/${messageId}`;
      await store.putObject(key, bytes);
      keys.push(key);
    }
    const seen = await consumer(ns, {}, 1);
    await eventually(() => dead.length === 3, 5000, 'the dead letters');
    expect(seen).toEqual([]);
    expect(dead.map((d) => d.headers['prism-dead-letter-reason'])).toEqual(
      keys.map(
        (key) =>
          `payload could not be opened: claim ${key}: the stored payload does not match the claim's size 5000 and sha256:${sha256(payload)}`,
      ),
    );
  });

  it('deletes the object once the only declared group acknowledged, without storing a marker for it', async () => {
    const ns = uniqueNamespace('claim');
    const raw = await drain(ns, TOPIC);
    const store = await objects(ns);
    const seen = await consumer(ns, {}, 3, 'billing', 'hold');
    const payload = randomBytes(5000);
    const { messageId } = await (
      await producer(ns, { threshold: '1KiB' }, {}, ['billing'])
    ).publish({ payload }, ALICE);
    const key = `claims/${sha256(payload)}/${messageId}`;
    await eventually(() => raw.length === 1 && seen.length === 1, 5000, 'the delivery');
    expect(raw[0]!.headers['prism-claim-groups']).toBe('billing');
    expect(Buffer.from(seen[0]!.envelope.payload).equals(payload)).toBe(true);
    // Opened, not yet acknowledged: the object stays; one group needs no marker.
    expect((await store.statObject(key))?.size).toBe(5000);
    expect(await store.statObject(`${key}.groups/billing`)).toBeUndefined();

    await seen[0]!.ack();
    expect(await store.statObject(key)).toBeUndefined();
  });

  it('keeps the object until every declared group acknowledged', async () => {
    const ns = uniqueNamespace('claim');
    const raw = await drain(ns, TOPIC);
    const store = await objects(ns);
    const billing = await consumer(ns, {}, 3, 'billing', 'hold');
    const audit = await consumer(ns, {}, 3, 'audit', 'hold');
    const payload = randomBytes(5000);
    const runner = await producer(ns, { threshold: '1KiB' }, {}, ['billing', 'audit']);
    const { messageId } = await runner.publish({ payload }, ALICE);
    const key = `claims/${sha256(payload)}/${messageId}`;
    await eventually(
      () => raw.length === 1 && billing.length === 1 && audit.length === 1,
      5000,
      'the deliveries',
    );
    expect(raw[0]!.headers['prism-claim-groups']).toBe('billing,audit');

    await billing[0]!.ack();
    expect(await store.statObject(`${key}.groups/billing`)).toBeUndefined();
    expect((await store.statObject(key))?.size).toBe(5000);
    expect(await store.statObject(`${key}.groups/audit`)).toMatchObject({ size: 0 });

    await audit[0]!.ack();
    expect(Buffer.from(audit[0]!.envelope.payload).equals(payload)).toBe(true);
    expect(await store.statObject(key)).toBeUndefined();
    expect(await store.statObject(`${key}.groups/audit`)).toBeUndefined();
  });

  it("keeps a dead-lettered message's object, so its dead-letter copy still opens", async () => {
    const ns = uniqueNamespace('claim');
    const dead = await drain(ns, `${TOPIC}.dead-letter`);
    const store = await objects(ns);
    const payload = randomBytes(5000);
    const runner = await producer(ns, { threshold: '1KiB' }, {}, ['billing']);
    const { messageId } = await runner.publish({ payload }, ALICE);
    const key = `claims/${sha256(payload)}/${messageId}`;
    await consumer(ns, {}, 1, 'billing', 'nack');
    await eventually(() => dead.length === 1, 5000, 'the dead letter');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await store.statObject(key))?.size).toBe(5000);
    expect(dead[0]!.headers['prism-claim-key']).toBe(key);
  });

  it('lists the groups of consumer and mailbox patterns on the published topic only, hashing names that cannot be key segments', () => {
    const groupsOf = consumingGroups(
      create(NamespaceRequestSchema, {
        namespace: 'n',
        team: 't',
        patterns: [
          create(PatternSchema, {
            name: 'p',
            type: 'producer',
            settings: create(PatternSettingsSchema, { topic: TOPIC }),
          }),
          ...[
            ['a', 'consumer', TOPIC, 'billing'],
            ['b', 'consumer', 'other.topic', 'elsewhere'],
            ['inbox', 'mailbox', TOPIC, ''],
            ['c', 'consumer', TOPIC, 'team a/b'],
          ].map(([name, type, topic, consumerGroup]) =>
            create(PatternSchema, {
              name,
              type,
              settings: create(PatternSettingsSchema, { topic, consumerGroup }),
            }),
          ),
        ],
      }),
    );
    expect(groupsOf(TOPIC)).toEqual(['billing', 'prism-mailbox-inbox', 'team a/b']);
    expect(groupsOf('other.topic')).toEqual(['elsewhere']);
    expect(groupsOf('nobody.reads')).toEqual([]);
    expect(markerName('billing')).toBe('billing');
    expect(markerName('team a/b')).toBe(`sha256-${sha256(Buffer.from('team a/b'))}`);
  });

  it('refuses to build a runner whose claim_check has no objects slot', () => {
    expect(() =>
      buildRunner({
        type: 'producer',
        slots: { sink: 'memstore' },
        settings: { topic: TOPIC, claimCheck: create(ClaimCheckSettingSchema, { threshold: '1MiB' }) },
      }),
    ).toThrow('claim_check needs the objects slot to store payloads in');
  });
});
