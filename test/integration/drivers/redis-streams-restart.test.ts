/**
 * The Redis Streams queue across a Redis restart and a lost stream, against a private
 * redis-server on a free port (append-only file, fsync on every write): enqueue fails fast while
 * Redis is down; a member resumes by itself, redelivers what it held unacknowledged with attempt 2
 * and receives what is enqueued later; a member whose stream and group vanished makes them again.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BackendDownError, type Delivery, type Subscription } from '../../../src/drivers/interfaces.js';
import { createRedisStreams, streamKey, type RedisStreams } from '../../../src/drivers/redis/streams.js';
import { describeWithRedisServer, freePort, startRedis, stopRedis } from '../../support/private-redis.js';
import { uniqueName } from '../../support/services.js';

const ACK_TIMEOUT_MS = 1_000;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describeWithRedisServer('redis streams queue across a Redis restart', () => {
  let dir: string;
  let port: number;
  let redis: ChildProcess | undefined;
  const drivers: RedisStreams[] = [];
  const subscriptions: Subscription[] = [];

  async function newDriver(namespace: string): Promise<RedisStreams> {
    const driver = createRedisStreams({ endpoint: `redis://127.0.0.1:${port}`, namespace });
    drivers.push(driver);
    await driver.connect();
    return driver;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'prism-redis-streams-restart-'));
    port = await freePort();
    redis = await startRedis(port, dir);
  });

  afterAll(async () => {
    await Promise.allSettled(subscriptions.map((s) => s.close()));
    for (const driver of drivers) await driver.close();
    if (redis) await stopRedis(redis, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails enqueue fast while Redis is down; the member resumes by itself, redelivering what it held', async () => {
    const driver = await newDriver(uniqueName('restart'));
    const seen: { payload: string; attempt: number }[] = [];
    subscriptions.push(
      await driver.consume(
        'orders',
        'billing',
        async (d: Delivery) => {
          seen.push({ payload: str(d.payload), attempt: d.attempt });
          if (str(d.payload) !== 'held' || d.attempt > 1) await d.ack();
        },
        { ackTimeoutMs: ACK_TIMEOUT_MS },
      ),
    );
    await driver.enqueue({ topic: 'orders', payload: text('held'), headers: {} });
    await waitFor('the first delivery', () => seen.length === 1);

    await stopRedis(redis as ChildProcess, 'SIGTERM');
    const started = Date.now();
    await expect(
      driver.enqueue({ topic: 'orders', payload: text('lost'), headers: {} }),
    ).rejects.toBeInstanceOf(BackendDownError);
    expect(Date.now() - started).toBeLessThan(2_000);

    redis = await startRedis(port, dir);
    // No new consume(): the member reconnects, claims what it held and reads on.
    for (;;) {
      try {
        await driver.enqueue({ topic: 'orders', payload: text('after'), headers: {} });
        break;
      } catch (err) {
        expect(err).toBeInstanceOf(BackendDownError);
        await sleep(50);
      }
    }
    await waitFor('the redelivery and the new message', () => seen.length >= 3);
    await sleep(ACK_TIMEOUT_MS + 300);
    expect([...seen].sort((a, b) => a.payload.localeCompare(b.payload))).toEqual([
      { payload: 'after', attempt: 1 },
      { payload: 'held', attempt: 1 },
      { payload: 'held', attempt: 2 },
    ]);
  });

  it('makes its stream and group again when they vanish, and keeps receiving', async () => {
    const namespace = uniqueName('vanish');
    const driver = await newDriver(namespace);
    const got: string[] = [];
    subscriptions.push(
      await driver.consume(
        'orders',
        'billing',
        async (d: Delivery) => {
          got.push(str(d.payload));
          await d.ack();
        },
        { ackTimeoutMs: ACK_TIMEOUT_MS },
      ),
    );
    await driver.enqueue({ topic: 'orders', payload: text('before'), headers: {} });
    await waitFor('the first message', () => got.length === 1);

    const admin = new Redis(`redis://127.0.0.1:${port}`);
    try {
      expect(await admin.del(streamKey(namespace, 'orders'))).toBe(1);
      await sleep(ACK_TIMEOUT_MS); // the member's reads now fail with NOGROUP and it makes the group again
      const groups = async () =>
        (await admin.xinfo('GROUPS', streamKey(namespace, 'orders')).catch(() => [])) as unknown[];
      const deadline = Date.now() + 10_000;
      while ((await groups()).length === 0 && Date.now() < deadline) await sleep(50);
      await driver.enqueue({ topic: 'orders', payload: text('after'), headers: {} });
      await waitFor('the message after the loss', () => got.length === 2);
      expect(got).toEqual(['before', 'after']);
    } finally {
      admin.disconnect();
    }
  });
});
