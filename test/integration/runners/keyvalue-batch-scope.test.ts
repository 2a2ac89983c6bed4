/**
 * BatchGet and BatchSet of a keyvalue pattern on real Redis, which answers each with one request:
 * they read and write the pattern's own keys (`<namespace>:keyvalue/<pattern>/<key>`, as Get and
 * Set do) with each item's TTL, and never the keys of another pattern of the same namespace.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, expect, it } from 'vitest';
import type { KeyValueRunner } from '../../../src/runners/keyvalue/runner.js';
import { describeWithService, redisUrl } from '../../support/services.js';
import { buildRunner, bytes, text, uniqueNamespace } from '../../unit/runners/helpers.js';

const running: KeyValueRunner[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

await describeWithService('redis', 'keyvalue batches on redis', () => {
  const redis = new Redis(redisUrl(), { lazyConnect: true });
  afterAll(() => redis.disconnect());

  async function started(namespace: string, name: string): Promise<KeyValueRunner> {
    const runner = buildRunner<KeyValueRunner>({
      type: 'keyvalue',
      name,
      namespace,
      slots: { store: { backend: 'redis', endpoint: redisUrl() } },
    });
    await runner.start();
    running.push(runner);
    return runner;
  }

  it("reads and writes only its own pattern's keys, with each item's TTL", async () => {
    const namespace = uniqueNamespace('kvbatch');
    const one = await started(namespace, 'one');
    const two = await started(namespace, 'two');

    await one.batchSet([
      { key: 'a', value: bytes('A') },
      { key: 'b', value: bytes('B'), ttlSeconds: 60 },
    ]);
    await two.set('a', bytes('other'));

    expect((await one.batchGet(['a', 'b', 'c'])).map(text)).toEqual(['A', 'B', undefined]);
    expect((await two.batchGet(['a', 'b'])).map(text)).toEqual(['other', undefined]);
    expect(await one.get('b').then(text)).toBe('B');
    expect((await one.scan('')).keys).toEqual(['a', 'b']);

    await redis.connect();
    expect(await redis.get(`${namespace}:keyvalue/one/a`)).toBe('A');
    expect(await redis.pttl(`${namespace}:keyvalue/one/a`)).toBe(-1);
    const ttl = await redis.pttl(`${namespace}:keyvalue/one/b`);
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await redis.exists(`${namespace}:a`, `${namespace}:b`)).toBe(0);
  });
});
