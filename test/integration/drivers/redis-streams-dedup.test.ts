/**
 * The Redis Streams queue appends a message id once per topic within DEDUP_WINDOW_MS: a batch sent
 * again after its reply was lost (Redis restarted after EXEC, ioredis resending unanswered commands
 * on reconnect, the producer retrying) is not stored twice. Messages without an id, and the same id
 * on another topic, are appended as given.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Message } from '../../../src/drivers/interfaces.js';
import { MESSAGE_ID_HEADER } from '../../../src/drivers/messaging-support.js';
import {
  createRedisStreams,
  DEDUP_WINDOW_MS,
  streamKey,
  type RedisStreams,
} from '../../../src/drivers/redis/streams.js';
import { describeWithService, redisUrl, uniqueName } from '../../support/services.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

await describeWithService('redis', 'redis streams de-duplication by message id', () => {
  const namespace = uniqueName('dedup');
  let admin: Redis;
  let driver: RedisStreams;

  /** The payloads stored on a topic, in stream order. */
  async function stored(topic: string): Promise<string[]> {
    const entries = await admin.xrangeBuffer(streamKey(namespace, topic), '-', '+');
    return entries.map(([, fields]) => fields[1]!.toString('utf8'));
  }

  const message = (topic: string, payload: string, id?: string): Message => ({
    topic,
    payload: text(payload),
    headers: id === undefined ? {} : { [MESSAGE_ID_HEADER]: id },
  });

  beforeAll(async () => {
    admin = new Redis(redisUrl());
    driver = createRedisStreams({ endpoint: redisUrl(), namespace });
    await driver.connect();
  });

  afterAll(async () => {
    await driver.close();
    const keys = await admin.keys(`prism/stream:${namespace}:*`);
    if (keys.length > 0) await admin.del(...keys);
    admin.disconnect();
  });

  it('stores a batch sent twice once, and a single enqueue of an id already stored not at all', async () => {
    const batch = [
      message('orders', 'a', 'm-1'),
      message('orders', 'b', 'm-2'),
      message('orders', 'c', 'm-3'),
    ];
    await driver.enqueueMany(batch);
    await driver.enqueueMany(batch);
    await driver.enqueue(message('orders', 'b again', 'm-2'));
    await driver.enqueue(message('orders', 'd', 'm-4'));
    expect(await stored('orders')).toEqual(['a', 'b', 'c', 'd']);
  });

  it('appends messages without an id every time, and the same id on another topic', async () => {
    await driver.enqueueMany([message('plain', 'x'), message('plain', 'x')]);
    await driver.enqueue(message('plain', 'x'));
    await driver.enqueue(message('other', 'a', 'm-1'));
    expect(await stored('plain')).toEqual(['x', 'x', 'x']);
    expect(await stored('other')).toEqual(['a']);
  });

  it('keeps each id marker for the window, under the namespace stream key pattern', async () => {
    const marker = `${streamKey(namespace, 'orders')}:dedup:m-1`;
    const ttl = await admin.pttl(marker);
    expect(ttl).toBeGreaterThan(DEDUP_WINDOW_MS - 60_000);
    expect(ttl).toBeLessThanOrEqual(DEDUP_WINDOW_MS);
    expect(marker.startsWith(`prism/stream:${namespace}:`)).toBe(true);
  });
});
