/**
 * The delivery contract clauses the pattern runners keep on every backend (issue 13, item 4):
 * topics are checked with the namespace model's syntax on every request, PublishBatch keeps batch
 * order per topic, and two keyvalue patterns of one namespace never see each other's keys. The
 * runners are built the way the proxy builds them, over each driver of test/conformance/drivers.ts.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/config/registry.js';
import { TOPIC_PATTERN } from '../../src/config/topic.js';
import type { ConsumerRunner } from '../../src/runners/consumer/runner.js';
import type { KeyValueRunner } from '../../src/runners/keyvalue/runner.js';
import type { ProducerRunner } from '../../src/runners/producer/runner.js';
import { PrismError } from '../../src/errors.js';
import { DRIVERS, type DriverUnderTest } from './drivers.js';
import { describeWithService } from '../support/services.js';
import {
  ALICE,
  buildRunner,
  bytes,
  eventually,
  memoryLogger,
  text,
  uniqueNamespace,
} from '../unit/runners/helpers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

async function describeDriver(entry: DriverUnderTest, title: string, fn: () => void): Promise<void> {
  if (entry.service !== undefined) await describeWithService(entry.service, title, fn);
  else describe(title, fn);
}

async function started<R extends { start(): Promise<void>; stop(): Promise<void> }>(runner: R): Promise<R> {
  await runner.start();
  cleanup.push(() => runner.stop());
  return runner;
}

async function expectPrismError(work: Promise<unknown>, code: string, ...fragments: string[]) {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PrismError);
  expect((err as PrismError).code).toBe(code);
  for (const fragment of fragments) expect((err as PrismError).message).toContain(fragment);
}

const MESSAGING = new Set(['pubsub', 'queue']);
const messagingDrivers = DRIVERS.filter((d) => BACKENDS[d.backend]?.implements.some((c) => MESSAGING.has(c)));
const keyvalueDrivers = DRIVERS.filter((d) => BACKENDS[d.backend]?.implements.includes('keyvalue'));

for (const entry of messagingDrivers) {
  await describeDriver(entry, `runner contract over ${entry.name}: messaging`, () => {
    afterAll(async () => entry.dispose?.());
    const slot = () => ({ backend: entry.backend, endpoint: entry.endpoint() });
    const options = () => (entry.dataDir ? { dataDir: entry.dataDir() } : {});

    const producer = (namespace: string) =>
      started(
        buildRunner<ProducerRunner>(
          { type: 'producer', namespace, slots: { sink: slot() }, settings: { topic: 'orders.events' } },
          options(),
        ),
      );
    const consumer = (namespace: string) =>
      started(
        buildRunner<ConsumerRunner>(
          {
            type: 'consumer',
            namespace,
            slots: { source: slot() },
            settings: { topic: 'orders.events', consumerGroup: 'billing', ackTimeout: '5s' },
          },
          { ...options(), logger: memoryLogger() },
        ),
      );

    it('refuses a topic with a space or a * on Publish, PublishBatch and Subscribe, naming the topic and the rule', async () => {
      const namespace = uniqueNamespace('conf-topic');
      const p = await producer(namespace);
      const c = await consumer(namespace);
      await expectPrismError(
        p.publish({ topic: 'orders events', payload: bytes('x') }, ALICE),
        'E_INVALID_ARGUMENT',
        '"orders events"',
        TOPIC_PATTERN,
      );
      await expectPrismError(
        p.publishBatch(
          [
            { topic: 'orders.ok', payload: bytes('never sent') },
            { topic: 'orders.*', payload: bytes('x') },
          ],
          ALICE,
        ),
        'E_INVALID_ARGUMENT',
        'message 1: topic "orders.*"',
        TOPIC_PATTERN,
      );
      await expectPrismError(
        c.subscribe({ topic: 'orders.*' }, async () => undefined),
        'E_INVALID_ARGUMENT',
        '"orders.*"',
        TOPIC_PATTERN,
      );
      await expectPrismError(
        c.subscribe({ topic: 'orders >' }, async () => undefined),
        'E_INVALID_ARGUMENT',
        '"orders >"',
      );
    });

    it('checks the batch before sending any of it: nothing of a refused batch is delivered', async () => {
      const namespace = uniqueNamespace('conf-batch-refused');
      const p = await producer(namespace);
      const c = await consumer(namespace);
      const seen: string[] = [];
      const sub = await c.subscribe({}, async (d) => {
        seen.push(text(d.envelope.payload)!);
        await d.ack();
      });
      cleanup.push(() => sub.close());
      await expect(
        p.publishBatch(
          [{ payload: bytes('first') }, { topic: 'bad topic', payload: bytes('second') }],
          ALICE,
        ),
      ).rejects.toThrow(/message 1/);
      await p.publish({ payload: bytes('after') }, ALICE);
      await eventually(() => seen.length >= 1, 20_000, 'the message after the refused batch');
      await new Promise((r) => setTimeout(r, 300));
      expect(seen).toEqual(['after']);
    });

    it('delivers a PublishBatch of 30 messages in batch order', async () => {
      const namespace = uniqueNamespace('conf-batch-order');
      const p = await producer(namespace);
      const c = await consumer(namespace);
      const seen: string[] = [];
      const sub = await c.subscribe({}, async (d) => {
        seen.push(text(d.envelope.payload)!);
        await d.ack();
      });
      cleanup.push(() => sub.close());
      const sent = Array.from({ length: 30 }, (_, i) => `b${i}`);
      const results = await p.publishBatch(
        sent.map((payload) => ({ payload: bytes(payload) })),
        ALICE,
      );
      expect(results.map((r) => r.duplicate)).toEqual(sent.map(() => false));
      await eventually(() => seen.length >= 30, 30_000, '30 messages');
      expect(seen).toEqual(sent);
    });
  });
}

for (const entry of keyvalueDrivers) {
  await describeDriver(entry, `runner contract over ${entry.name}: keyvalue`, () => {
    afterAll(async () => entry.dispose?.());

    it('keeps the keys of two keyvalue patterns of one namespace on one backend apart', async () => {
      const namespace = uniqueNamespace('conf-kv-patterns');
      const dataDir = entry.dataDir?.();
      const kv = (name: string) =>
        started(
          buildRunner<KeyValueRunner>(
            {
              type: 'keyvalue',
              name,
              namespace,
              slots: { store: { backend: entry.backend, endpoint: entry.endpoint() } },
            },
            dataDir !== undefined ? { dataDir } : {},
          ),
        );
      const cache = await kv('cache');
      const profiles = await kv('profiles');
      await cache.set('user:1', bytes('cached'));
      expect(await profiles.get('user:1')).toBeUndefined();
      expect(await profiles.exists('user:1')).toBe(false);
      await profiles.set('user:1', bytes('profile'));
      await profiles.set('user:2', bytes('profile 2'));
      expect(text(await cache.get('user:1'))).toBe('cached');
      expect(text(await profiles.get('user:1'))).toBe('profile');
      expect((await cache.scan('')).keys).toEqual(['user:1']);
      // Sorted here: this case is about isolation; scan order has its own case (keyvalue.test.ts).
      expect((await profiles.scan('user:')).keys.sort()).toEqual(['user:1', 'user:2']);
      expect(await cache.delete('user:2')).toBe(false);
      expect(text(await profiles.get('user:2'))).toBe('profile 2');
    });
  });
}
