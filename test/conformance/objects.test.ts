/**
 * One `objects` suite for every driver that declares it (memstore, filesystem, s3 against a real
 * SeaweedFS): put/get/delete, ranged reads, checksums, expiry and sweeping, missing objects,
 * namespace isolation, and (for network stores) a store that is down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { BACKENDS } from '../../src/config/registry.js';
import { createDriver } from '../../src/drivers/registry.js';
import type { AnyDriver, ObjectStore } from '../../src/drivers/interfaces.js';
import { isPrismError } from '../../src/errors.js';
import { declaredCapabilities, DRIVERS, s3DriverOptions, type DriverUnderTest } from './drivers.js';
import { describeWithService, uniqueName } from '../support/services.js';

type ObjectDriver = AnyDriver & ObjectStore;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const text = (s: string) => new TextEncoder().encode(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function describeDriver(entry: DriverUnderTest, fn: () => void): Promise<void> {
  const title = `objects conformance: ${entry.name}`;
  if (entry.service !== undefined) await describeWithService(entry.service, title, fn);
  else describe(title, fn);
}

const OBJECT_DRIVERS = DRIVERS.filter((entry) => declaredCapabilities(entry).includes('objects'));

it('runs against memstore, filesystem and s3', () => {
  expect(OBJECT_DRIVERS.map((d) => d.backend)).toEqual(['memstore', 'filesystem', 's3']);
});

for (const entry of OBJECT_DRIVERS) {
  const namespace = uniqueName('objects');
  const driver = (await entry.create(namespace)) as ObjectDriver;
  const others: AnyDriver[] = [];

  await describeDriver(entry, () => {
    beforeAll(async () => {
      await driver.connect();
    }, 30_000);

    afterAll(async () => {
      for (const d of [...others, driver]) await d.close();
      await entry.dispose?.();
    });

    it(`declares objects as the registry lists for ${entry.backend}`, () => {
      expect([...driver.capabilities].sort()).toEqual([...BACKENDS[entry.backend]!.implements].sort());
      expect(driver.capabilities.has('objects')).toBe(true);
    });

    it('returns the bytes it stored, with their size and SHA-256', async () => {
      const body = randomBytes(70_000);
      const info = await driver.putObject('docs/a.bin', body);
      expect(info).toEqual({ key: 'docs/a.bin', size: 70_000, sha256: sha256(body) });
      expect(Buffer.from((await driver.getObject('docs/a.bin'))!).equals(body)).toBe(true);
      expect(await driver.statObject('docs/a.bin')).toEqual({
        key: 'docs/a.bin',
        size: 70_000,
        sha256: sha256(body),
      });
    });

    it('reads an object as it arrives: its size first, then its bytes in order', async () => {
      const body = randomBytes(3 * 1024 * 1024 + 7);
      await driver.putObject('read/big', body);
      const reader = await driver.readObject('read/big');
      expect(reader?.size).toBe(body.byteLength);
      const chunks: Uint8Array[] = [];
      for await (const chunk of reader!.chunks) chunks.push(Buffer.from(chunk));
      expect(Buffer.concat(chunks).equals(body)).toBe(true);
      await driver.putObject('read/empty', new Uint8Array(0));
      const empty = await driver.readObject('read/empty');
      expect(empty?.size).toBe(0);
      for await (const chunk of empty!.chunks) expect(chunk.byteLength).toBe(0);
      expect(await driver.readObject('read/missing')).toBeUndefined();
    }, 30_000);

    it('releases a read stopped after its first chunk, and reads the object again', async () => {
      const body = randomBytes(4 * 1024 * 1024);
      await driver.putObject('read/stopped', body);
      for (let i = 0; i < 3; i++) {
        const reader = await driver.readObject('read/stopped');
        for await (const chunk of reader!.chunks) {
          expect(Buffer.from(chunk).equals(body.subarray(0, chunk.byteLength))).toBe(true);
          break;
        }
      }
      expect(sha256((await driver.getObject('read/stopped'))!)).toBe(sha256(body));
    }, 30_000);

    it('stores an empty object', async () => {
      await driver.putObject('empty', new Uint8Array(0));
      expect(await driver.getObject('empty')).toEqual(new Uint8Array(0));
      expect((await driver.statObject('empty'))?.size).toBe(0);
    });

    it('replaces an object put again under the same key', async () => {
      await driver.putObject('replace', text('first'));
      await driver.putObject('replace', text('second!'));
      expect(new TextDecoder().decode(await driver.getObject('replace'))).toBe('second!');
      expect((await driver.statObject('replace'))?.sha256).toBe(sha256(text('second!')));
    });

    it('reads byte ranges, clamped to the end of the object', async () => {
      const body = text('0123456789');
      await driver.putObject('range', body);
      const read = async (offset: number, length?: number) =>
        new TextDecoder().decode(
          await driver.getObject('range', { offset, ...(length !== undefined ? { length } : {}) }),
        );
      expect(await read(2, 3)).toBe('234');
      expect(await read(7)).toBe('789');
      expect(await read(8, 100)).toBe('89');
      expect(await read(10, 5)).toBe('');
      expect(await read(0, 0)).toBe('');
    });

    it('refuses a body whose SHA-256 differs from the expected one, storing nothing', async () => {
      const body = text('payload');
      const err = await driver
        .putObject('checked', body, { sha256: sha256(text('other')) })
        .catch((e: unknown) => e);
      expect(isPrismError(err) && err.code).toBe('E_INVALID_ARGUMENT');
      expect(await driver.statObject('checked')).toBeUndefined();
      await driver.putObject('checked', body, { sha256: sha256(body) });
      expect((await driver.statObject('checked'))?.sha256).toBe(sha256(body));
    });

    it('stores a streamed body of many chunks (several S3 parts) byte-exact, with its size, SHA-256 and expiry', async () => {
      const body = randomBytes(11 * 1024 * 1024 + 3);
      async function* chunks() {
        for (let i = 0; i < body.byteLength; i += 256 * 1024) yield body.subarray(i, i + 256 * 1024);
      }
      const info = await driver.putObjectStream('streamed/big', chunks(), { ttlMs: 3_600_000 });
      expect({ ...info, expiresAtMs: undefined }).toEqual({
        key: 'streamed/big',
        size: body.byteLength,
        sha256: sha256(body),
        expiresAtMs: undefined,
      });
      expect(info.expiresAtMs).toBeGreaterThan(Date.now());
      expect(sha256((await driver.getObject('streamed/big'))!)).toBe(sha256(body));
      expect((await driver.statObject('streamed/big'))?.size).toBe(body.byteLength);
      const small = text('one chunk');
      await driver.putObjectStream(
        'streamed/small',
        (async function* () {
          yield small;
        })(),
        { sha256: sha256(small) },
      );
      expect(await driver.statObject('streamed/small')).toEqual({
        key: 'streamed/small',
        size: 9,
        sha256: sha256(small),
      });
    }, 60_000);

    it('stores nothing from a streamed body that fails or hashes to other than expected', async () => {
      const failing = (async function* () {
        yield randomBytes(6 * 1024 * 1024);
        throw new Error('the caller went away');
      })();
      await expect(driver.putObjectStream('streamed/failed', failing)).rejects.toThrow(
        'the caller went away',
      );
      expect(await driver.statObject('streamed/failed')).toBeUndefined();
      const body = randomBytes(6 * 1024 * 1024);
      const wrong = await driver
        .putObjectStream(
          'streamed/wrong',
          (async function* () {
            yield body;
          })(),
          { sha256: sha256(text('other')) },
        )
        .catch((e: unknown) => e);
      expect(isPrismError(wrong) && wrong.code).toBe('E_INVALID_ARGUMENT');
      expect(await driver.statObject('streamed/wrong')).toBeUndefined();
    }, 60_000);

    it('stores a streamed body of announced size (S3: one PutObject as it arrives) byte-exact, with its SHA-256 checked', async () => {
      const body = randomBytes(7 * 1024 * 1024 + 5);
      async function* chunks(bytes: Uint8Array = body) {
        for (let i = 0; i < bytes.byteLength; i += 256 * 1024) yield bytes.subarray(i, i + 256 * 1024);
      }
      const info = await driver.putObjectStream('announced/ok', chunks(), {
        size: body.byteLength,
        sha256: sha256(body),
        ttlMs: 3_600_000,
      });
      expect({ ...info, expiresAtMs: undefined }).toEqual({
        key: 'announced/ok',
        size: body.byteLength,
        sha256: sha256(body),
        expiresAtMs: undefined,
      });
      expect(sha256((await driver.getObject('announced/ok'))!)).toBe(sha256(body));
      expect(await driver.statObject('announced/ok')).toEqual({ ...info });
      // Without an announced hash the driver's own is reported.
      const unhashed = await driver.putObjectStream('announced/unhashed', chunks(), {
        size: body.byteLength,
      });
      expect(unhashed.sha256).toBe(sha256(body));
      expect(sha256((await driver.getObject('announced/unhashed'))!)).toBe(sha256(body));
    }, 60_000);

    it('stores a short body of announced size and hash (S3: one PutObject as it arrives) byte-exact', async () => {
      const body = randomBytes(1024 * 1024 + 3);
      async function* chunks() {
        for (let i = 0; i < body.byteLength; i += 256 * 1024) yield body.subarray(i, i + 256 * 1024);
      }
      const info = await driver.putObjectStream('announced/short-ok', chunks(), {
        size: body.byteLength,
        sha256: sha256(body),
      });
      expect(info).toEqual({ key: 'announced/short-ok', size: body.byteLength, sha256: sha256(body) });
      expect(sha256((await driver.getObject('announced/short-ok'))!)).toBe(sha256(body));
      expect(await driver.statObject('announced/short-ok')).toEqual(info);
    });

    it('records a SHA-256 the caller computed from the body (sha256Computed) as given, without hashing the body', async () => {
      const body = randomBytes(64 * 1024);
      // Not the body's hash: what is recorded shows the driver did not compute its own.
      const given = sha256(text('computed by the caller'));
      const put = await driver.putObject('computed/put', body, { sha256: given, sha256Computed: true });
      async function* chunks() {
        yield body;
      }
      const streamed = await driver.putObjectStream('computed/streamed', chunks(), {
        size: body.byteLength,
        sha256: given,
        sha256Computed: true,
      });
      expect([put.sha256, streamed.sha256]).toEqual([given, given]);
      expect((await driver.statObject('computed/streamed'))?.sha256).toBe(given);
      expect(sha256((await driver.getObject('computed/streamed'))!)).toBe(sha256(body));
    });

    it('stores nothing from a streamed body longer or shorter than announced, or hashing to other than announced', async () => {
      const body = randomBytes(6 * 1024 * 1024);
      async function* chunks(bytes: Uint8Array) {
        for (let i = 0; i < bytes.byteLength; i += 256 * 1024) yield bytes.subarray(i, i + 256 * 1024);
      }
      const cases = [
        {
          key: 'announced/short',
          body: body.subarray(1),
          options: { size: body.byteLength },
          says: 'not the announced',
        },
        { key: 'announced/long', body, options: { size: body.byteLength - 1 }, says: 'more than' },
        {
          key: 'announced/small',
          body: body.subarray(0, 10),
          options: { size: 11 },
          says: 'not the announced',
        },
        {
          key: 'announced/hash',
          body,
          options: { size: body.byteLength, sha256: sha256(text('other')) },
          says: 'SHA-256',
        },
        {
          key: 'announced/small-hash',
          body: body.subarray(0, 1024 * 1024),
          options: { size: 1024 * 1024, sha256: sha256(text('other')) },
          says: 'SHA-256',
        },
        {
          key: 'announced/computed-short',
          body: body.subarray(1),
          options: { size: body.byteLength, sha256: sha256(body), sha256Computed: true },
          says: 'not the announced',
        },
      ];
      for (const c of cases) {
        const err = await driver.putObjectStream(c.key, chunks(c.body), c.options).catch((e: unknown) => e);
        expect(isPrismError(err) && err.code).toBe('E_INVALID_ARGUMENT');
        expect((err as Error).message).toContain(c.says);
        expect(await driver.statObject(c.key)).toBeUndefined();
      }
    }, 60_000);

    it('renames an object with its bytes and expiry, and reports a missing one', async () => {
      const body = text('moving');
      const put = await driver.putObject('rename/from', body, { ttlMs: 3_600_000 });
      expect(await driver.renameObject('rename/from', 'rename/to/here')).toBe(true);
      expect(await driver.statObject('rename/from')).toBeUndefined();
      expect(new TextDecoder().decode(await driver.getObject('rename/to/here'))).toBe('moving');
      const moved = await driver.statObject('rename/to/here');
      expect(moved?.expiresAtMs).toBe(put.expiresAtMs);
      expect(moved?.size).toBe(6);
      expect(await driver.renameObject('rename/missing', 'rename/elsewhere')).toBe(false);
    });

    it('answers undefined for a missing object, and deleting one reports whether it existed', async () => {
      expect(await driver.getObject('missing/object')).toBeUndefined();
      expect(await driver.getObject('missing/object', { offset: 1, length: 2 })).toBeUndefined();
      expect(await driver.statObject('missing/object')).toBeUndefined();
      expect(await driver.deleteObject('missing/object')).toBe(false);
      await driver.putObject('to-delete', text('x'));
      expect(await driver.deleteObject('to-delete')).toBe(true);
      expect(await driver.getObject('to-delete')).toBeUndefined();
    });

    it('refuses keys with empty, dot or dot-dot segments or other characters', async () => {
      for (const key of ['', '/abs', 'a//b', 'a/../b', './a', 'a b', 'ä']) {
        const err = await driver.putObject(key, text('x')).catch((e: unknown) => e);
        expect(isPrismError(err) && err.code, key).toBe('E_INVALID_ARGUMENT');
      }
    });

    it('treats an object past its TTL as missing, and a sweep deletes expired objects under a prefix', async () => {
      const put = await driver.putObject('ttl/short', text('soon gone'), { ttlMs: 1500 });
      expect(put.expiresAtMs).toBeGreaterThan(Date.now());
      await driver.putObject('ttl/long', text('stays'), { ttlMs: 3_600_000 });
      await driver.putObject('other/short', text('other prefix'), { ttlMs: 1500 });
      expect(new TextDecoder().decode(await driver.getObject('ttl/short'))).toBe('soon gone');
      await sleep(1700);
      expect(await driver.getObject('ttl/short')).toBeUndefined();
      expect(await driver.readObject('ttl/short')).toBeUndefined();
      expect(await driver.statObject('ttl/short')).toBeUndefined();
      // 'ttl/short' may already be gone (read as missing and removed); 'other/short' is outside the prefix.
      expect(await driver.sweepObjects('ttl/')).toBeLessThanOrEqual(1);
      expect(await driver.sweepObjects('other/')).toBe(1);
      expect(new TextDecoder().decode(await driver.getObject('ttl/long'))).toBe('stays');
    });

    it("keeps one namespace's objects from another's", async () => {
      const other = (await entry.create(uniqueName('objects-other'))) as ObjectDriver;
      others.push(other);
      await other.connect();
      await driver.putObject('shared-key', text('mine'));
      expect(await other.getObject('shared-key')).toBeUndefined();
      await other.putObject('shared-key', text('theirs'));
      expect(new TextDecoder().decode(await driver.getObject('shared-key'))).toBe('mine');
    });

    it('stores and returns a 20 MiB object byte-exact', async () => {
      const body = randomBytes(20 * 1024 * 1024);
      await driver.putObject('big', body);
      const back = await driver.getObject('big');
      expect(back?.byteLength).toBe(body.byteLength);
      expect(sha256(back!)).toBe(sha256(body));
      expect(await driver.deleteObject('big')).toBe(true);
    }, 60_000);
  });
}

await describeWithService('s3', 'objects conformance: an S3 store that is down', () => {
  it('fails connect and every call with E_BACKEND_DOWN, naming s3 and no credentials', async () => {
    const { credentials } = s3DriverOptions();
    // A loopback port nothing listens on (the test server's port + 7 is not one SeaweedFS uses).
    const port = Number(new URL(s3DriverOptions().endpoint).port) + 7;
    const down = (await createDriver('s3', {
      endpoint: `http://127.0.0.1:${port}/prism-down`,
      namespace: 'down',
      ...(credentials !== undefined ? { credentials } : {}),
    })) as ObjectDriver;
    try {
      for (const call of [
        () => down.connect(),
        () => down.putObject('k', text('x')),
        () => down.putObjectStream('k', oneChunk(text('x')), { size: 1, sha256: sha256(text('x')) }),
        () => down.getObject('k'),
        () => down.readObject('k'),
        () => down.statObject('k'),
        () => down.deleteObject('k'),
      ]) {
        const err = await call().catch((e: unknown) => e);
        expect(isPrismError(err) && err.code).toBe('E_BACKEND_DOWN');
        expect((err as Error).message).toMatch(/^s3 is unavailable: /);
        expect((err as Error).message).not.toContain(credentials!.password);
      }
    } finally {
      await down.close();
    }
  }, 30_000);
});

await describeWithService('s3', 'objects conformance: an S3 store that refuses the credentials', () => {
  it("fails every call with E_PERMISSION_DENIED naming S3's reason, storing and deleting nothing", async () => {
    const options = s3DriverOptions();
    const wrong = (await createDriver('s3', {
      ...options,
      namespace: 'refused',
      credentials: { username: options.credentials!.username, password: 'not-the-secret' },
    })) as ObjectDriver;
    const right = (await createDriver('s3', { ...options, namespace: 'refused' })) as ObjectDriver;
    const body = randomBytes(300_000);
    try {
      for (const [key, call] of [
        ['whole', () => wrong.putObject('whole', body)],
        [
          'streamed',
          () =>
            wrong.putObjectStream('streamed', oneChunk(body), {
              size: body.byteLength,
              sha256: sha256(body),
            }),
        ],
      ] as const) {
        const err = await call().catch((e: unknown) => e);
        expect(isPrismError(err) && err.code).toBe('E_PERMISSION_DENIED');
        expect((err as Error).message).toMatch(
          new RegExp(
            `^s3 refused PutObject ${key} in bucket prism-conformance: SignatureDoesNotMatch \\(HTTP 403\\)`,
          ),
        );
        expect((err as Error).message).not.toContain('not-the-secret');
        expect(await right.statObject(key)).toBeUndefined();
      }
      await right.putObject('kept', body);
      for (const call of [
        () => wrong.statObject('kept'),
        () => wrong.getObject('kept'),
        () => wrong.readObject('kept'),
        () => wrong.deleteObject('kept'),
      ]) {
        const err = await call().catch((e: unknown) => e);
        expect(isPrismError(err) && err.code).toBe('E_PERMISSION_DENIED');
        expect((err as Error).message).toMatch(/^s3 refused \w+Object kept in bucket prism-conformance: /);
      }
      expect(await right.statObject('kept')).toMatchObject({ size: body.byteLength, sha256: sha256(body) });
      await right.deleteObject('kept');
    } finally {
      await wrong.close();
      await right.close();
    }
  }, 30_000);
});

async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}
