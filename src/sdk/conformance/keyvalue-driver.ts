import type { Driver, KeyValueStore, TtlStore } from '../../drivers/interfaces.js';
import { bytes, text, type TestApi } from './test-api.js';

/**
 * The keyvalue driver contract (src/drivers/interfaces.ts KeyValueStore, and TtlStore when the
 * driver declares `ttl`) as a suite a third party runs against their own driver. `create` builds
 * an unconnected driver whose keys no other run sees (a fresh namespace or key prefix).
 */
export function keyValueDriverConformance(
  name: string,
  create: () => Promise<Driver & KeyValueStore>,
  t: TestApi,
): void {
  const { describe, it, beforeAll, afterAll, expect } = t;
  describe(`keyvalue driver conformance: ${name}`, () => {
    let driver: Driver & KeyValueStore;
    beforeAll(async () => {
      driver = await create();
      await driver.connect();
    });
    afterAll(async () => {
      await driver?.close();
    });

    it('declares the keyvalue capability', () => {
      expect(driver.capabilities.has('keyvalue')).toBe(true);
    });
    it('answers health once connected', async () => {
      expect(await driver.health().then(() => 'healthy')).toBe('healthy');
    });
    it('gets back the bytes it set, and undefined for a key never set', async () => {
      await driver.set('conf/a', bytes('one'));
      expect(text(await driver.get('conf/a'))).toBe('one');
      expect(await driver.get('conf/never')).toBeUndefined();
    });
    it('overwrites a value', async () => {
      await driver.set('conf/b', bytes('first'));
      await driver.set('conf/b', bytes('second'));
      expect(text(await driver.get('conf/b'))).toBe('second');
    });
    it('keeps bytes exactly, empty and binary values included', async () => {
      const binary = new Uint8Array([0, 255, 1, 128, 0]);
      await driver.set('conf/bin', binary);
      await driver.set('conf/empty', new Uint8Array());
      expect([...((await driver.get('conf/bin')) ?? [])]).toEqual([0, 255, 1, 128, 0]);
      expect((await driver.get('conf/empty'))?.length).toBe(0);
    });
    it('reports existence, and deletion only of a key that existed', async () => {
      await driver.set('conf/c', bytes('x'));
      expect(await driver.exists('conf/c')).toBe(true);
      expect(await driver.delete('conf/c')).toBe(true);
      expect(await driver.exists('conf/c')).toBe(false);
      expect(await driver.delete('conf/c')).toBe(false);
    });
    it('expires a key after its ttl when it declares ttl', async () => {
      if (!driver.capabilities.has('ttl')) {
        expect('expire' in driver).toBe(false);
        return;
      }
      const ttl = driver as Driver & KeyValueStore & TtlStore;
      await ttl.set('conf/ttl', bytes('v'), 60_000);
      const left = await ttl.ttl('conf/ttl');
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(60_000);
      expect(await ttl.ttl('conf/no-such-key')).toBe(-2);
      await ttl.set('conf/ttl', bytes('v'), 200);
      await new Promise((r) => setTimeout(r, 1_200));
      expect(await ttl.get('conf/ttl')).toBeUndefined();
    });
  });
}
