import type { KeyValueRunnerApi } from '../../runners/types.js';
import { bytes, text, type TestApi } from './test-api.js';

/**
 * The KeyValue API contract (prism.data.v1.KeyValue as a runner serves it) as a suite a pattern
 * module runs against its runner: what a client of a pattern with `api: keyvalue` may rely on.
 * `create` builds an unstarted runner over slots no other run uses; the suite starts and stops it.
 */
export function keyValueRunnerConformance(
  name: string,
  create: () => Promise<KeyValueRunnerApi>,
  t: TestApi,
): void {
  const { describe, it, beforeAll, afterAll, expect } = t;
  describe(`keyvalue runner conformance: ${name}`, () => {
    let runner: KeyValueRunnerApi;
    beforeAll(async () => {
      runner = await create();
      await runner.start();
    });
    afterAll(async () => {
      await runner?.stop();
    });

    it('answers health once started', async () => {
      expect(await runner.health().then(() => 'healthy')).toBe('healthy');
    });
    it('gets back what it set, and undefined for a missing key', async () => {
      await runner.set('rc/a', bytes('one'));
      expect(text(await runner.get('rc/a'))).toBe('one');
      expect(await runner.get('rc/missing')).toBeUndefined();
    });
    it('deletes, reporting whether the key existed', async () => {
      await runner.set('rc/d', bytes('x'));
      expect(await runner.exists('rc/d')).toBe(true);
      expect(await runner.delete('rc/d')).toBe(true);
      expect(await runner.delete('rc/d')).toBe(false);
      expect(await runner.exists('rc/d')).toBe(false);
    });
    it('sets, gets and deletes in batches, in request order', async () => {
      await runner.batchSet([
        { key: 'rc/b1', value: bytes('1') },
        { key: 'rc/b2', value: bytes('2') },
      ]);
      const got = await runner.batchGet(['rc/b2', 'rc/none', 'rc/b1']);
      expect(got.map(text)).toEqual(['2', undefined, '1']);
      expect(await runner.batchDelete(['rc/b1', 'rc/none'])).toEqual([true, false]);
    });
    it('reports -2 as the ttl of a missing key and -1 for a key without expiry', async () => {
      await runner.set('rc/t', bytes('x'));
      expect(await runner.ttl('rc/t')).toBe(-1);
      expect(await runner.ttl('rc/t-missing')).toBe(-2);
    });
  });
}
