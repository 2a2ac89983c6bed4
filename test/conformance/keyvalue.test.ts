/**
 * One keyvalue suite for every driver that implements keyvalue (STYLE.md: Dapr-style conformance).
 * A capability the driver declares (keyvalue, ttl, scan) is tested; one it does not declare must
 * be absent. Every driver gets a namespace unique to this run, so runs never see each other's keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, type Capability } from '../../src/config/registry.js';
import { CAPABILITY_METHODS } from '../../src/drivers/combine.js';
import type { AnyDriver, KeyValueStore, ScanStore, TtlStore } from '../../src/drivers/interfaces.js';
import { declaredCapabilities, DRIVERS, type DriverUnderTest } from './drivers.js';
import { describeWithService, uniqueName } from '../support/services.js';

type KvDriver = AnyDriver & KeyValueStore & TtlStore & ScanStore;

const SHORT_TTL_MS = 300;
const EXPIRY_WAIT_MS = 5_000;

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `condition` holds; fails after `timeoutMs`. */
async function eventually(
  what: string,
  condition: () => Promise<boolean>,
  timeoutMs = EXPIRY_WAIT_MS,
): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(25);
  }
}

/** Every page of a scan, following cursors. */
async function scanPages(driver: ScanStore, prefix: string, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await driver.scan(prefix, { limit, cursor });
    pages.push(page.keys);
    cursor = page.cursor;
    if (pages.length > 1_000) throw new Error('scan did not end after 1000 pages');
  } while (cursor !== undefined);
  return pages;
}

/** Declares the suite for one driver; without its service, skips (or fails under PRISM_REQUIRE_SERVICES=1). */
async function describeDriver(entry: DriverUnderTest, fn: () => void): Promise<void> {
  const title = `keyvalue conformance: ${entry.name}`;
  if (entry.service !== undefined) await describeWithService(entry.service, title, fn);
  else describe(title, fn);
}

const KEYVALUE_DRIVERS = DRIVERS.filter((entry) => declaredCapabilities(entry).includes('keyvalue'));

for (const entry of KEYVALUE_DRIVERS) {
  // Built before the suite is declared (without connecting) so the declared capabilities choose the cases.
  const namespace = uniqueName('kv');
  const declared = await entry.create(namespace);
  const caps = declared.capabilities;
  const driver = declared as KvDriver;
  const others: AnyDriver[] = [];

  /** A second driver of the same backend in another namespace, closed with the suite. */
  async function otherNamespace(): Promise<KvDriver> {
    const other = await entry.create(uniqueName('kv-other'));
    others.push(other);
    await other.connect();
    return other as KvDriver;
  }

  await describeDriver(entry, () => {
    beforeAll(async () => {
      await driver.connect();
    });

    afterAll(async () => {
      for (const d of [...others, driver]) await d.close();
      await entry.dispose?.();
    });

    it(`declares the capabilities the registry lists for ${entry.backend}`, () => {
      expect([...caps].sort()).toEqual([...(BACKENDS[entry.backend]?.implements ?? [])].sort());
      expect(driver.backend).toBe(entry.backend);
    });

    const undeclared = (Object.keys(CAPABILITY_METHODS) as Capability[]).filter((cap) => !caps.has(cap));
    for (const cap of undeclared) {
      it(`has none of the ${cap} methods, since it does not declare ${cap}`, () => {
        for (const method of CAPABILITY_METHODS[cap]) {
          expect((driver as unknown as Record<string, unknown>)[method], method).toBeUndefined();
        }
      });
    }

    it('answers a health check once connected, and connect() again is harmless', async () => {
      await driver.connect();
      await expect(driver.health()).resolves.toBeUndefined();
    });

    if (caps.has('keyvalue')) {
      describe('keyvalue', () => {
        it('returns the value it stored', async () => {
          await driver.set('greeting', text('hello'));
          expect(str(await driver.get('greeting'))).toBe('hello');
        });

        it('returns undefined for a missing key, not an error', async () => {
          await expect(driver.get('never-written')).resolves.toBeUndefined();
        });

        it('overwrites a value', async () => {
          await driver.set('overwritten', text('first'));
          await driver.set('overwritten', text('second'));
          expect(str(await driver.get('overwritten'))).toBe('second');
        });

        it('stores every byte value unchanged', async () => {
          const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
          await driver.set('binary', allBytes);
          const got = await driver.get('binary');
          expect(got).toBeInstanceOf(Uint8Array);
          expect([...(got ?? [])]).toEqual([...allBytes]);
        });

        it('stores an empty value as an empty value, not as a missing key', async () => {
          await driver.set('empty', new Uint8Array(0));
          const got = await driver.get('empty');
          expect(got).toBeInstanceOf(Uint8Array);
          expect(got?.byteLength).toBe(0);
          expect(await driver.exists('empty')).toBe(true);
        });

        it('stores a 1 MiB value', async () => {
          const big = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 31 + 7) % 256);
          await driver.set('big', big);
          const got = await driver.get('big');
          expect(got?.byteLength).toBe(big.byteLength);
          expect(Buffer.compare(Buffer.from(got ?? []), Buffer.from(big))).toBe(0);
        });

        it('stores a value passed as a view into a larger buffer, and only that view', async () => {
          const backing = text('xxhello-viewxx');
          await driver.set('view', backing.subarray(2, 12));
          expect(str(await driver.get('view'))).toBe('hello-view');
        });

        it('keeps what it stored when the caller later changes its buffers', async () => {
          const mine = Buffer.from('original'); // a Buffer, as gRPC hands values over
          await driver.set('copied', mine);
          mine.fill(0x21);
          const first = await driver.get('copied');
          first?.fill(0x3f);
          expect(str(await driver.get('copied'))).toBe('original');
        });

        it('keeps keys with unicode and : - _ . / apart', async () => {
          const keys = ['a:b', 'a-b', 'a_b', 'a.b', 'a/b', 'ü/ñ:日本', '😀.-_/:', 'a:b:', ':', 'A:B'];
          await Promise.all(keys.map((key) => driver.set(key, text(`value of ${key}`))));
          for (const key of keys) expect(str(await driver.get(key))).toBe(`value of ${key}`);
        });

        it('deletes a key and reports that it existed', async () => {
          await driver.set('doomed', text('x'));
          expect(await driver.delete('doomed')).toBe(true);
          expect(await driver.get('doomed')).toBeUndefined();
          expect(await driver.exists('doomed')).toBe(false);
        });

        it('deleting a missing key is not an error and returns false', async () => {
          await expect(driver.delete('never-written')).resolves.toBe(false);
        });

        it('tells whether a key exists', async () => {
          await driver.set('present', text('x'));
          expect(await driver.exists('present')).toBe(true);
          expect(await driver.exists('absent')).toBe(false);
        });

        it('never shows one namespace the keys of another', async () => {
          const other = await otherNamespace();
          await driver.set('shared-name', text('mine'));
          expect(await other.get('shared-name')).toBeUndefined();
          expect(await other.exists('shared-name')).toBe(false);
          expect(await other.delete('shared-name')).toBe(false);
          await other.set('shared-name', text('theirs'));
          expect(str(await driver.get('shared-name'))).toBe('mine');
          expect(str(await other.get('shared-name'))).toBe('theirs');
        });

        it('accepts 200 concurrent writers to distinct keys', async () => {
          const n = 200;
          await Promise.all(Array.from({ length: n }, (_, i) => driver.set(`parallel/${i}`, text(`v${i}`))));
          const values = await Promise.all(Array.from({ length: n }, (_, i) => driver.get(`parallel/${i}`)));
          expect(values.map(str)).toEqual(Array.from({ length: n }, (_, i) => `v${i}`));
        });

        it('keeps one of the written values when 50 writers race on one key', async () => {
          const written = Array.from({ length: 50 }, (_, i) => `writer-${i}`);
          await Promise.all(written.map((v) => driver.set('contended', text(v))));
          expect(written).toContain(str(await driver.get('contended')));
        });

        it('serves 200 concurrent readers the same value', async () => {
          await driver.set('popular', text('same for all'));
          const reads = await Promise.all(Array.from({ length: 200 }, () => driver.get('popular')));
          expect(new Set(reads.map(str))).toEqual(new Set(['same for all']));
        });
      });
    }

    if (caps.has('ttl')) {
      describe('ttl', () => {
        it('forgets a key once its TTL passes', async () => {
          await driver.set('short-lived', text('x'), SHORT_TTL_MS);
          expect(str(await driver.get('short-lived'))).toBe('x');
          await eventually('the key expires', async () => (await driver.get('short-lived')) === undefined);
          expect(await driver.exists('short-lived')).toBe(false);
          expect(await driver.ttl('short-lived')).toBe(-2);
          expect(await driver.delete('short-lived')).toBe(false);
        });

        it('reports the remaining milliseconds, -1 without expiry and -2 for a missing key', async () => {
          await driver.set('with-ttl', text('x'), 60_000);
          const remaining = await driver.ttl('with-ttl');
          expect(remaining).toBeGreaterThan(50_000);
          expect(remaining).toBeLessThanOrEqual(60_000);
          await driver.set('without-ttl', text('x'));
          expect(await driver.ttl('without-ttl')).toBe(-1);
          expect(await driver.ttl('never-written')).toBe(-2);
        });

        it('treats TTL 0 as no expiry and clears an earlier TTL', async () => {
          await driver.set('ttl-zero', text('a'), 60_000);
          await driver.set('ttl-zero', text('b'), 0);
          expect(await driver.ttl('ttl-zero')).toBe(-1);
          expect(str(await driver.get('ttl-zero'))).toBe('b');
        });

        it('drops the TTL when a key is overwritten without one', async () => {
          await driver.set('reset', text('a'), SHORT_TTL_MS);
          await driver.set('reset', text('b'));
          expect(await driver.ttl('reset')).toBe(-1);
          await sleep(SHORT_TTL_MS + 100);
          expect(str(await driver.get('reset'))).toBe('b');
        });

        it('sets an expiry on an existing key with expire, and removes it with persist', async () => {
          await driver.set('expire-me', text('x'));
          expect(await driver.expire('expire-me', 60_000)).toBe(true);
          const remaining = await driver.ttl('expire-me');
          expect(remaining).toBeGreaterThan(50_000);
          expect(remaining).toBeLessThanOrEqual(60_000);
          expect(await driver.persist('expire-me')).toBe(true);
          expect(await driver.ttl('expire-me')).toBe(-1);
        });

        it('expires a key whose TTL was set with expire', async () => {
          await driver.set('expire-short', text('x'));
          expect(await driver.expire('expire-short', SHORT_TTL_MS)).toBe(true);
          await eventually('the key expires', async () => !(await driver.exists('expire-short')));
        });

        it('returns false from expire and persist on a missing key', async () => {
          expect(await driver.expire('never-written', 60_000)).toBe(false);
          expect(await driver.persist('never-written')).toBe(false);
          expect(await driver.exists('never-written')).toBe(false);
        });

        it('returns false from expire and persist on an expired key', async () => {
          await driver.set('gone', text('x'), SHORT_TTL_MS);
          await eventually('the key expires', async () => !(await driver.exists('gone')));
          expect(await driver.expire('gone', 60_000)).toBe(false);
          expect(await driver.persist('gone')).toBe(false);
        });

        it('rejects a negative TTL on set and a non-positive TTL on expire', async () => {
          await expect(driver.set('bad-ttl', text('x'), -1)).rejects.toThrow(RangeError);
          await driver.set('bad-ttl', text('x'));
          await expect(driver.expire('bad-ttl', 0)).rejects.toThrow(RangeError);
          await expect(driver.expire('bad-ttl', -5)).rejects.toThrow(RangeError);
          expect(await driver.ttl('bad-ttl')).toBe(-1);
        });
      });
    }

    if (caps.has('scan')) {
      describe('scan', () => {
        it('pages through 25 keys by 10 with a cursor, each key once, none of another prefix or namespace', async () => {
          const wanted = Array.from({ length: 25 }, (_, i) => `page/${String(i).padStart(2, '0')}`);
          await Promise.all(wanted.map((key) => driver.set(key, text('x'))));
          await Promise.all(
            ['pag', 'pagex', 'page', 'Page/1', 'other/page/1'].map((k) => driver.set(k, text('x'))),
          );
          const other = await otherNamespace();
          await Promise.all(['page/99', 'page/00x'].map((key) => other.set(key, text('x'))));

          const pages = await scanPages(driver, 'page/', 10);

          expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
          const seen = pages.flat();
          expect(seen.length).toBe(new Set(seen).size);
          expect([...seen].sort()).toEqual(wanted);
        });

        it('returns keys in ascending UTF-8 byte order across pages, the cursor continuing after the last key', async () => {
          // Byte order differs from JavaScript's UTF-16 order for U+E000..U+FFFF against astral
          // characters (\u{1F600} sorts after \uFFFD in UTF-8), and from locale order for case.
          const suffixes = [
            'B',
            'a',
            'b',
            'a/1',
            'a0',
            '~',
            '\u00e9',
            '\uFFFD',
            '\u{1F600}',
            '\uE000',
            'Z',
            '0',
            'a\u0001',
          ];
          const keys = suffixes.map((x) => `order/${x}`);
          for (const key of [...keys].reverse()) await driver.set(key, text('x'));
          const byBytes = [...keys].sort((a, b) =>
            Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')),
          );
          expect(byBytes.slice(-3)).toEqual(['order/\uE000', 'order/\uFFFD', 'order/\u{1F600}']);
          const pages = await scanPages(driver, 'order/', 4);
          expect(pages.map((p) => p.length)).toEqual([4, 4, 4, 1]);
          expect(pages.flat()).toEqual(byBytes);
        });

        it('continues after the cursor even when the key it names was deleted between pages', async () => {
          const keys = ['cont/1', 'cont/2', 'cont/3', 'cont/4', 'cont/5'];
          for (const key of keys) await driver.set(key, text('x'));
          const first = await driver.scan('cont/', { limit: 2 });
          expect(first.keys).toEqual(['cont/1', 'cont/2']);
          expect(typeof first.cursor).toBe('string');
          await driver.delete('cont/2');
          await driver.set('cont/0', text('x'));
          const second = await driver.scan('cont/', { limit: 2, cursor: first.cursor });
          expect(second.keys).toEqual(['cont/3', 'cont/4']);
          const third = await driver.scan('cont/', { limit: 2, cursor: second.cursor });
          expect(third).toEqual({ keys: ['cont/5'] });
        });

        it('escapes pattern metacharacters in the prefix: % _ * ? [ ] \\', async () => {
          const metas = ['%', '_', '*', '?', '[', ']', '\\'];
          for (const [i, c] of metas.entries()) {
            await driver.set(`meta${i}${c}hit`, text('x'));
            await driver.set(`meta${i}Xmiss`, text('x'));
            await driver.set(`meta${i}${c}${c}hit`, text('x'));
          }
          for (const [i, c] of metas.entries()) {
            const pages = await scanPages(driver, `meta${i}${c}`, 10);
            expect(pages.flat().sort(), `prefix meta${i}${c}`).toEqual(
              [`meta${i}${c}${c}hit`, `meta${i}${c}hit`].sort(),
            );
          }
        });

        it('scans by a unicode prefix, case-sensitively', async () => {
          const keys = ['ü/ñ:1', 'ü/ñ:2', 'ü/n:3', 'Ü/ñ:4', '日本/1', '😀/1', '😀/2', '😁/3'].map(
            (k) => `uni/${k}`,
          );
          await Promise.all(keys.map((key) => driver.set(key, text('x'))));
          expect((await scanPages(driver, 'uni/ü/ñ:', 10)).flat().sort()).toEqual(['uni/ü/ñ:1', 'uni/ü/ñ:2']);
          expect((await scanPages(driver, 'uni/😀/', 1)).flat().sort()).toEqual(['uni/😀/1', 'uni/😀/2']);
          expect((await scanPages(driver, 'uni/日本', 10)).flat()).toEqual(['uni/日本/1']);
        });

        it('returns one empty page without a cursor when nothing matches', async () => {
          expect(await driver.scan('no-such-prefix/', { limit: 10 })).toEqual({ keys: [] });
        });

        it('with an empty prefix lists every key of its namespace and nothing else', async () => {
          const fresh = await otherNamespace();
          await Promise.all(['x', 'y/1', 'z:2'].map((key) => fresh.set(key, text('x'))));
          expect((await scanPages(fresh, '', 2)).flat().sort()).toEqual(['x', 'y/1', 'z:2']);
        });

        it('leaves expired keys out', async () => {
          await driver.set('fading/1', text('x'), SHORT_TTL_MS);
          await driver.set('fading/2', text('x'));
          await eventually('the key expires', async () => !(await driver.exists('fading/1')));
          expect((await scanPages(driver, 'fading/', 10)).flat()).toEqual(['fading/2']);
        });

        it('rejects a limit below 1', async () => {
          await expect(driver.scan('', { limit: 0 })).rejects.toThrow(RangeError);
        });
      });
    }
  });
}
