/**
 * The keyvalue runner on real Redis and PostgreSQL: the same requests are accepted and rejected
 * as on memstore, and what the runner accepts the backend stores faithfully.
 */
import { afterEach, expect, it } from 'vitest';
import type { KeyValueRunner } from '../../../src/runners/keyvalue/runner.js';
import { describeWithService, postgresUrl, redisUrl, type ServiceName } from '../../support/services.js';
import { buildRunner, bytes, text, uniqueNamespace } from '../../unit/runners/helpers.js';

const running: KeyValueRunner[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

const STORES: Array<{ service: ServiceName; endpoint: () => string }> = [
  { service: 'redis', endpoint: redisUrl },
  { service: 'postgres', endpoint: postgresUrl },
];

for (const store of STORES) {
  await describeWithService(store.service, `keyvalue runner on ${store.service}`, () => {
    async function started(settings: Record<string, string> = {}): Promise<KeyValueRunner> {
      const runner = buildRunner<KeyValueRunner>({
        type: 'keyvalue',
        namespace: uniqueNamespace('kvit'),
        slots: { store: { backend: store.service, endpoint: store.endpoint() } },
        settings,
      });
      await runner.start();
      running.push(runner);
      return runner;
    }

    it('stores values byte for byte under the longest and most unusual keys it accepts', async () => {
      const kv = await started();
      const value = Uint8Array.from({ length: 256 }, (_, i) => i);
      const keys = ['é'.repeat(512), 'emoji-\u{1F600}', 'with space', 'percent%_and*glob[', 'a:b:c'];
      for (const key of keys) await kv.set(key, value);
      for (const key of keys) expect(new Uint8Array((await kv.get(key))!)).toEqual(value);
      await expect(kv.set('é'.repeat(512) + 'x', value)).rejects.toMatchObject({
        code: 'E_INVALID_ARGUMENT',
      });
      await expect(kv.set('nul\0', value)).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
      await expect(kv.set('lone\uD800', value)).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    });

    it('rejects a value over max_value_size and applies default_ttl', async () => {
      const kv = await started({ maxValueSize: '512B', defaultTtl: '5m' });
      await expect(kv.set('big', new Uint8Array(513))).rejects.toMatchObject({
        code: 'E_INVALID_ARGUMENT',
        message: 'value is 513 bytes; the limit is 512B (512 bytes, setting max_value_size)',
      });
      await kv.set('k', new Uint8Array(512));
      const ttl = await kv.ttl('k');
      expect(ttl).toBeGreaterThan(4 * 60_000);
      expect(ttl).toBeLessThanOrEqual(5 * 60_000);
      await kv.set('explicit', bytes('v'), 60);
      expect(await kv.ttl('explicit')).toBeLessThanOrEqual(60_000);
    });

    it('applies batches in request order and scans in pages of at most 1000', async () => {
      const kv = await started();
      await kv.batchSet([
        { key: 'dup', value: bytes('first') },
        { key: 'dup', value: bytes('second') },
      ]);
      expect((await kv.batchGet(['dup', 'nope'])).map(text)).toEqual(['second', undefined]);
      expect(await kv.batchDelete(['dup', 'dup'])).toEqual([true, false]);

      await kv.batchSet(
        Array.from({ length: 1010 }, (_, i) => ({
          key: `s:${String(i).padStart(4, '0')}`,
          value: bytes('x'),
        })),
      );
      const keys: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await kv.scan('s:', 5000, cursor);
        expect(page.keys.length).toBeLessThanOrEqual(1000);
        keys.push(...page.keys);
        cursor = page.cursor;
        pages++;
      } while (cursor !== undefined && pages < 20);
      expect(new Set(keys).size).toBe(1010);
      expect((await kv.scan('s:')).keys.length).toBeLessThanOrEqual(100);
    });
  });
}
