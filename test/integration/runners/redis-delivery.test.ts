/**
 * How a namespace chooses between Redis Streams and Redis pub/sub (`needs.delivery`), shown on a
 * real Redis through the producer and consumer runners: the default (at-least-once) runs on
 * Streams, `at-most-once` runs on pub/sub, and each behaves as its guarantee says.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { streamKey } from '../../../src/drivers/redis/streams.js';
import { Delivery } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import type { ConsumerRunner } from '../../../src/runners/consumer/runner.js';
import type { ProducerRunner } from '../../../src/runners/producer/runner.js';
import { describeWithService, redisUrl } from '../../support/services.js';
import {
  ALICE,
  buildRunner,
  bytes,
  eventually,
  memoryLogger,
  text,
  uniqueNamespace,
} from '../../unit/runners/helpers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await describeWithService('redis', 'needs.delivery on a redis producer and consumer', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    await redis.quit();
  });

  async function pair(namespace: string, delivery?: Delivery) {
    const slot = { backend: 'redis', endpoint: redisUrl() };
    const needs = delivery === undefined ? {} : { needs: { delivery } };
    const producer = buildRunner<ProducerRunner>({
      type: 'producer',
      namespace,
      slots: { sink: slot },
      settings: { topic: 'orders.events' },
      ...needs,
    });
    const consumer = buildRunner<ConsumerRunner>(
      {
        type: 'consumer',
        namespace,
        slots: { source: slot },
        settings: { topic: 'orders.events', consumerGroup: 'billing', ackTimeout: '2s' },
        ...needs,
      },
      { logger: memoryLogger() },
    );
    await producer.start();
    cleanup.push(() => producer.stop());
    await consumer.start();
    cleanup.push(() => consumer.stop());
    return { producer, consumer };
  }

  /** Two members of group billing; each acknowledges and records what it got. */
  async function twoMembers(consumer: ConsumerRunner): Promise<[string[], string[]]> {
    const got: [string[], string[]] = [[], []];
    for (const list of got) {
      await consumer.subscribe({}, async (d) => {
        list.push(text(d.envelope.payload)!);
        await d.ack();
      });
    }
    return got;
  }

  it('default (at-least-once): runs on Redis Streams, keeps what was published before any member, and shares a group', async () => {
    const namespace = uniqueNamespace('deliv');
    const { producer, consumer } = await pair(namespace);
    await producer.publish({ payload: bytes('early') }, ALICE);
    expect(await redis.xlen(streamKey(namespace, 'orders.events'))).toBe(1);

    const [a, b] = await twoMembers(consumer);
    const later = Array.from({ length: 20 }, (_, i) => `m${i}`);
    for (const p of later) await producer.publish({ payload: bytes(p) }, ALICE);
    await eventually(() => a.length + b.length >= 21, 20_000, '21 deliveries');
    await sleep(300);
    expect([...a, ...b].sort()).toEqual(['early', ...later].sort());
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
  });

  it('needs.delivery: at-most-once runs on Redis pub/sub: what was published before any member is lost and every member gets every message', async () => {
    const namespace = uniqueNamespace('deliv');
    const { producer, consumer } = await pair(namespace, Delivery.AT_MOST_ONCE);
    await producer.publish({ payload: bytes('early') }, ALICE);
    expect(await redis.exists(streamKey(namespace, 'orders.events'))).toBe(0);

    const [a, b] = await twoMembers(consumer);
    for (const p of ['x', 'y', 'z']) await producer.publish({ payload: bytes(p) }, ALICE);
    await eventually(() => a.length >= 3 && b.length >= 3, 20_000, 'each member got three');
    await sleep(300);
    expect(a).toEqual(['x', 'y', 'z']);
    expect(b).toEqual(['x', 'y', 'z']);
    expect(await redis.exists(streamKey(namespace, 'orders.events'))).toBe(0);
  });
});
