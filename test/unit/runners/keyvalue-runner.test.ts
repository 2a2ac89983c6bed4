import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { KeyValueRunner } from '../../../src/runners/keyvalue/runner.js';
import { buildRunner, bytes, text } from './helpers.js';

const dataDir = mkdtempSync(join(tmpdir(), 'prism-kv-runner-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const running: KeyValueRunner[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

async function started(backend: string, settings: Record<string, string> = {}): Promise<KeyValueRunner> {
  const runner = buildRunner<KeyValueRunner>(
    { type: 'keyvalue', slots: { store: backend }, settings },
    { dataDir },
  );
  await runner.start();
  running.push(runner);
  return runner;
}

describe.each(['memstore', 'sqlite'])('keyvalue runner on %s', (backend) => {
  it('stores, reads, checks and deletes a value', async () => {
    const kv = await started(backend);
    await kv.set('user:1', bytes('alice'));
    expect(text(await kv.get('user:1'))).toBe('alice');
    expect(await kv.exists('user:1')).toBe(true);
    expect(await kv.delete('user:1')).toBe(true);
    expect(await kv.get('user:1')).toBeUndefined();
    expect(await kv.delete('user:1')).toBe(false);
  });

  it('rejects a value larger than max_value_size, naming the limit', async () => {
    const kv = await started(backend, { maxValueSize: '1KiB' });
    await kv.set('fits', new Uint8Array(1024));
    await expect(kv.set('big', new Uint8Array(1025))).rejects.toMatchObject({
      code: 'E_INVALID_ARGUMENT',
      message: 'value is 1025 bytes; the limit is 1KiB (1024 bytes, setting max_value_size)',
    });
    expect(await kv.exists('big')).toBe(false);
  });

  it('rejects an empty key', async () => {
    const kv = await started(backend);
    await expect(kv.set('', bytes('x'))).rejects.toMatchObject({
      code: 'E_INVALID_ARGUMENT',
      message: 'key must not be empty',
    });
  });

  it('rejects a key over 1 KiB of UTF-8 and accepts one of exactly 1 KiB', async () => {
    const kv = await started(backend);
    await kv.set('é'.repeat(512), bytes('ok')); // 1024 bytes
    await expect(kv.get('é'.repeat(512) + 'x')).rejects.toMatchObject({
      code: 'E_INVALID_ARGUMENT',
      message: 'key is 1025 bytes of UTF-8; the limit is 1024 bytes',
    });
  });

  it('rejects a key with a lone surrogate or a NUL', async () => {
    const kv = await started(backend);
    await expect(kv.set('bad\uD800', bytes('x'))).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    await expect(kv.exists('\uDC00bad')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    await expect(kv.delete('a\0b')).rejects.toMatchObject({
      code: 'E_INVALID_ARGUMENT',
      message: 'key contains a NUL character',
    });
    await kv.set('emoji-\u{1F600}', bytes('fine'));
    expect(text(await kv.get('emoji-\u{1F600}'))).toBe('fine');
  });

  it('applies default_ttl when a set carries no TTL or TTL 0', async () => {
    const kv = await started(backend, { defaultTtl: '10m' });
    await kv.set('a', bytes('1'));
    await kv.set('b', bytes('2'), 0);
    for (const key of ['a', 'b']) {
      const ttl = await kv.ttl(key);
      expect(ttl).toBeGreaterThan(9 * 60_000);
      expect(ttl).toBeLessThanOrEqual(10 * 60_000);
    }
  });

  it('uses the caller TTL over default_ttl, and no expiry when default_ttl is 0s', async () => {
    const kv = await started(backend);
    await kv.set('forever', bytes('1'));
    expect(await kv.ttl('forever')).toBe(-1);
    await kv.set('short', bytes('1'), 30);
    const ttl = await kv.ttl('short');
    expect(ttl).toBeGreaterThan(29_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
    expect(await kv.ttl('missing')).toBe(-2);
  });

  it('expires a key after its TTL', async () => {
    const kv = await started(backend);
    await kv.set('brief', bytes('1'), 0.05);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await kv.get('brief')).toBeUndefined();
  });

  it('expire, ttl and persist manage an existing key', async () => {
    const kv = await started(backend);
    await kv.set('k', bytes('v'));
    expect(await kv.expire('k', 60)).toBe(true);
    expect(await kv.ttl('k')).toBeGreaterThan(59_000);
    expect(await kv.persist('k')).toBe(true);
    expect(await kv.ttl('k')).toBe(-1);
    expect(await kv.expire('missing', 60)).toBe(false);
    await expect(kv.expire('k', 0)).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    await expect(kv.set('k', bytes('v'), -1)).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
  });

  it('applies batch operations in request order', async () => {
    const kv = await started(backend);
    await kv.batchSet([
      { key: 'dup', value: bytes('first') },
      { key: 'other', value: bytes('o') },
      { key: 'dup', value: bytes('second') },
    ]);
    expect((await kv.batchGet(['dup', 'missing', 'other'])).map(text)).toEqual(['second', undefined, 'o']);
    expect(await kv.batchDelete(['other', 'other', 'dup'])).toEqual([true, false, true]);
  });

  it('checks a whole batch before writing any of it', async () => {
    const kv = await started(backend);
    await expect(
      kv.batchSet([
        { key: 'good', value: bytes('1') },
        { key: '', value: bytes('2') },
      ]),
    ).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT', message: 'item 1: key must not be empty' });
    expect(await kv.exists('good')).toBe(false);
  });

  it('scans by prefix in pages of 100 by default and at most 1000', async () => {
    const kv = await started(backend);
    await kv.batchSet(
      Array.from({ length: 1005 }, (_, i) => ({ key: `p:${String(i).padStart(4, '0')}`, value: bytes('x') })),
    );
    await kv.set('q:other', bytes('x'));

    const first = await kv.scan('p:');
    expect(first.keys).toHaveLength(100);
    expect(first.keys[0]).toBe('p:0000');
    expect(first.cursor).toBeDefined();

    const big = await kv.scan('p:', 5000);
    expect(big.keys).toHaveLength(1000);
    const rest = await kv.scan('p:', 5000, big.cursor);
    expect(rest.keys).toEqual(['p:1000', 'p:1001', 'p:1002', 'p:1003', 'p:1004']);
    expect(rest.cursor).toBeUndefined();

    expect((await kv.scan('p:', 3)).keys).toEqual(['p:0000', 'p:0001', 'p:0002']);
    await expect(kv.scan('p:', -1)).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
  });
});

describe('keyvalue runner lifecycle', () => {
  it('refuses calls before start and after stop', async () => {
    const kv = buildRunner<KeyValueRunner>({ type: 'keyvalue', slots: { store: 'memstore' } });
    await expect(kv.get('k')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    await kv.start();
    await kv.health();
    await kv.stop();
    await expect(kv.get('k')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });

  it('waits for in-flight calls before closing the store', async () => {
    const kv = buildRunner<KeyValueRunner>({ type: 'keyvalue', slots: { store: 'memstore' } });
    await kv.start();
    const writes = Array.from({ length: 20 }, (_, i) => kv.set(`k${i}`, bytes('v')));
    await kv.stop();
    await expect(Promise.all(writes)).resolves.toHaveLength(20);
  });
});
