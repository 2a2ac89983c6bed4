/**
 * rate-limited-kv against the SDK's conformance suites, as a pattern author runs them: the
 * KeyValue runner suite on its runner over a real Redis store, and the keyvalue driver suite on
 * the Redis driver its slot uses; then its own contract, the quota.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDriver,
  createPatternRunner,
  keyValueDriverConformance,
  keyValueRunnerConformance,
  type Driver,
  type KeyValueStore,
  type PrismError,
} from 'prismctl/sdk';
import { describeWithService, redisUrl, uniqueName } from '../../../test/support/services.js';
import definition from './index.js';

const t = { describe, it, beforeAll, afterAll, expect };
const onRedis = (settings: Record<string, string>) =>
  createPatternRunner(definition, {
    namespace: uniqueName('sdk-run'),
    slots: [{ slot: 'store', backend: 'redis', endpoint: redisUrl() }],
    settings,
  });

await describeWithService('redis', 'rate-limited-kv with the SDK conformance suites', () => {
  keyValueDriverConformance(
    'redis',
    async () =>
      (await createDriver('redis', { endpoint: redisUrl(), namespace: uniqueName('sdk-drv') })) as Driver &
        KeyValueStore,
    t,
  );
  keyValueRunnerConformance('rate-limited-kv', async () => onRedis({ writes_per_window: '1000' }), t);

  describe('rate-limited-kv quota', () => {
    const runner = onRedis({ writes_per_window: '2', window: '1h' });
    beforeAll(() => runner.start());
    afterAll(() => runner.stop());

    it('counts each item of a batch and refuses the write past the quota', async () => {
      await runner.batchSet([
        { key: 'a', value: new Uint8Array([1]) },
        { key: 'b', value: new Uint8Array([2]) },
      ]);
      const refused = (await runner.delete('a').catch((e: unknown) => e)) as PrismError;
      expect([refused.code, await runner.exists('a')]).toEqual(['E_RESOURCE_EXHAUSTED', true]);
    });

    it('keeps its counter out of reach of callers', async () => {
      const refused = (await runner.get('__rate/0').catch((e: unknown) => e)) as PrismError;
      expect(refused.code).toBe('E_INVALID_ARGUMENT');
      expect((await runner.scan('', 100)).keys.sort()).toEqual(['a', 'b']);
    });
  });
});
