import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connectRedis, describeWithService, uniqueName } from '../../support/services.js';

await describeWithService('redis', 'Redis test service', () => {
  let redis: Redis;

  beforeAll(async () => {
    redis = connectRedis();
    await redis.ping();
  });

  afterAll(async () => {
    await redis?.quit();
  });

  it('stores a value with a millisecond expiry and forgets it once the expiry passes', async () => {
    const key = uniqueName('prism:smoke');

    expect(await redis.set(key, 'hello', 'PX', 400)).toBe('OK');
    expect(await redis.get(key)).toBe('hello');
    const pttl = await redis.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(400);

    // Wait for the server to expire the key (poll, do not assume a wall-clock bound).
    const deadline = Date.now() + 5_000;
    while ((await redis.exists(key)) === 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await redis.get(key)).toBeNull();
    expect(await redis.pttl(key)).toBe(-2); // -2: the key does not exist
  });
});
