/**
 * Group members of the Redis Streams queue come and go without piling up in the group: a closed
 * subscription that held nothing deletes its name at once, one that still held entries is
 * deleted by another member once those were claimed and it has been idle for `staleMemberMs`.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Delivery } from '../../../src/drivers/interfaces.js';
import { createRedisStreams, streamKey, type RedisStreams } from '../../../src/drivers/redis/streams.js';
import { describeWithService, redisUrl, uniqueName } from '../../support/services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

await describeWithService('redis', 'redis streams group members', () => {
  const namespace = uniqueName('members');
  const key = streamKey(namespace, 'orders');
  let admin: Redis;
  let driver: RedisStreams;

  /** Names and pending counts of the group's members. */
  async function members(): Promise<Array<{ name: string; pending: number }>> {
    const rows = (await admin.xinfo('CONSUMERS', key, 'billing')) as unknown[][];
    return rows.map((fields) => {
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
      return { name: String(info.get('name')), pending: Number(info.get('pending')) };
    });
  }

  beforeAll(async () => {
    admin = new Redis(redisUrl());
    driver = createRedisStreams({ endpoint: redisUrl(), namespace, staleMemberMs: 300 });
    await driver.connect();
  });

  afterAll(async () => {
    await driver.close();
    await admin.del(key);
    admin.disconnect();
  });

  it('deletes a closed member once what it held was claimed, and a member holding nothing as it closes', async () => {
    const held: Delivery[] = [];
    const first = await driver.consume('orders', 'billing', (d) => void held.push(d), {
      ackTimeoutMs: 1_000,
    });
    await driver.enqueue({ topic: 'orders', payload: text('x'), headers: {} });
    await waitFor('the first delivery', async () => held[0]);
    await first.close();
    expect(await members()).toEqual([{ name: expect.any(String) as string, pending: 1 }]);
    const closedName = (await members())[0]!.name;

    const got: { payload: string; attempt: number }[] = [];
    const second = await driver.consume(
      'orders',
      'billing',
      async (d) => {
        got.push({ payload: str(d.payload), attempt: d.attempt });
        await d.ack();
      },
      { ackTimeoutMs: 1_000 },
    );
    await waitFor('the claim by the second member', async () => (got.length > 0 ? true : undefined));
    expect(got).toEqual([{ payload: 'x', attempt: 2 }]);
    const remaining = await waitFor('the closed member to be deleted', async () => {
      const list = await members();
      return list.some((m) => m.name === closedName) ? undefined : list;
    });
    expect(remaining).toEqual([{ name: expect.any(String) as string, pending: 0 }]);

    await second.close();
    expect(await members()).toEqual([]);
  });
});
