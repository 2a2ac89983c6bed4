/**
 * One suite for every NamespaceStore: the same cases run against SQLite (a file in a temp dir) and
 * PostgreSQL (a fresh random schema, dropped afterwards; skipped with a printed reason when the
 * test server is absent, a failure under PRISM_REQUIRE_SERVICES=1). Cases that only make sense for
 * one store (file permissions, two admins racing over one database) follow in that store's block.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  VersionConflictError,
  type AuditRecord,
  type NamespaceStore,
  type StoredNamespace,
} from '../../../src/admin/store.js';
import { openStore, redactSpec, StoreUnavailableError } from '../../../src/admin/open-store.js';
import { PostgresStore } from '../../../src/admin/store-postgres.js';
import { SqliteStore } from '../../../src/admin/store-sqlite.js';
import {
  connectPostgres,
  describeWithService,
  postgresUrl,
  type ServiceName,
} from '../../support/services.js';

// ---------------------------------------------------------------------------------------------
// Factories
// ---------------------------------------------------------------------------------------------

function namespace(name: string, version: number, overrides: Partial<StoredNamespace> = {}): StoredNamespace {
  return {
    name,
    team: 'commerce',
    version,
    declaration: { namespace: name, team: 'commerce', patterns: [{ name: 'cache', type: 'keyvalue' }] },
    assignment: { namespace: name, version, partition: 7 },
    contentHash: `sha256-${name}-${version}`,
    updatedAtMs: 1_700_000_000_000 + version,
    updatedBy: 'alice',
    ...overrides,
  };
}

function audit(
  name: string,
  versionBefore: number,
  versionAfter: number,
  overrides: Partial<AuditRecord> = {},
): AuditRecord {
  return {
    namespace: name,
    action: versionBefore === 0 ? 'create' : versionAfter === 0 ? 'delete' : 'update',
    principal: 'alice',
    atMs: 1_700_000_000_000 + versionAfter,
    versionBefore,
    versionAfter,
    diff: `--- v${versionBefore}\n+++ v${versionAfter}\n`,
    source: 'cli',
    ...overrides,
  };
}

/** A place a store lives (a file, a schema): open as many stores on it as a test needs. */
interface Location {
  open(): Promise<NamespaceStore>;
  dispose(): Promise<void>;
}

interface Backend {
  name: string;
  service?: ServiceName;
  location(): Promise<Location>;
}

const backends: Backend[] = [
  {
    name: 'SQLite',
    async location() {
      const dir = mkdtempSync(join(tmpdir(), 'prism-store-'));
      const file = join(dir, 'admin', 'store.db');
      return {
        open: () => openStore(file),
        dispose: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'PostgreSQL',
    service: 'postgres',
    async location() {
      const schema = `prism_store_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
      return {
        open: () => openStore(postgresUrl(), { schema }),
        dispose: async () => {
          const client = await connectPostgres();
          try {
            await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          } finally {
            await client.end();
          }
        },
      };
    },
  },
];

async function describeBackend(backend: Backend, fn: () => void): Promise<void> {
  const title = `${backend.name} namespace store`;
  if (backend.service) await describeWithService(backend.service, title, fn);
  else describe(title, fn);
}

/** Resolves to the error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

for (const backend of backends) {
  await describeBackend(backend, () => {
    let location: Location | undefined;
    const opened: NamespaceStore[] = [];

    /** A store on this test's location; the first call creates the location. */
    async function open(): Promise<NamespaceStore> {
      location ??= await backend.location();
      const store = await location.open();
      opened.push(store);
      return store;
    }

    afterEach(async () => {
      for (const store of opened.splice(0).reverse()) await store.close();
      await location?.dispose();
      location = undefined;
    });

    it('creates namespaces and reads them back by name and in a list ordered by name', async () => {
      const store = await open();
      await store.put(namespace('payments', 1), 0, audit('payments', 0, 1));
      await store.put(namespace('orders', 1, { team: 'fulfilment' }), 0, audit('orders', 0, 1));

      expect(await store.get('payments')).toEqual(namespace('payments', 1));
      expect(await store.get('missing')).toBeUndefined();
      expect(await store.list()).toEqual([
        namespace('orders', 1, { team: 'fulfilment' }),
        namespace('payments', 1),
      ]);
    });

    it('keeps the key order of declarations and assignments', async () => {
      const store = await open();
      const declaration = { zeta: 1, alpha: { nested: true, a: [3, 1, 2] }, mid: null };
      await store.put(namespace('orders', 1, { declaration }), 0, audit('orders', 0, 1));

      const stored = await store.get('orders');
      expect(JSON.stringify(stored?.declaration)).toBe(JSON.stringify(declaration));
    });

    it('updates a namespace when the expected version is the stored one', async () => {
      const store = await open();
      await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));
      const v2 = namespace('orders', 2, {
        team: 'fulfilment',
        updatedBy: 'bob',
        assignment: { partition: 9 },
      });
      await store.put(v2, 1, audit('orders', 1, 2, { principal: 'bob' }));

      expect(await store.get('orders')).toEqual(v2);
    });

    it('rejects a stale expected version with the actual version and who changed it', async () => {
      const store = await open();
      await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));
      await store.put(namespace('orders', 2, { updatedBy: 'bob' }), 1, audit('orders', 1, 2));

      const err = await rejection(
        store.put(namespace('orders', 2, { updatedBy: 'carol' }), 1, audit('orders', 1, 2)),
      );
      expect(err).toBeInstanceOf(VersionConflictError);
      expect(err).toMatchObject({
        code: 'E_VERSION_CONFLICT',
        namespace: 'orders',
        expected: 1,
        actual: 2,
        changedBy: 'bob',
      });
      expect((await store.get('orders'))?.updatedBy).toBe('bob');
      expect(await store.history('orders')).toHaveLength(2);
    });

    it('rejects creating a namespace that already exists', async () => {
      const store = await open();
      await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));

      const err = await rejection(
        store.put(namespace('orders', 1, { updatedBy: 'bob' }), 0, audit('orders', 0, 1)),
      );
      expect(err).toBeInstanceOf(VersionConflictError);
      expect(err).toMatchObject({ expected: 0, actual: 1, changedBy: 'alice' });
      expect(await store.history('orders')).toHaveLength(1);
    });

    it('rejects updating a namespace that does not exist, with actual version 0', async () => {
      const store = await open();
      const err = await rejection(store.put(namespace('orders', 4), 3, audit('orders', 3, 4)));
      expect(err).toMatchObject({ code: 'E_VERSION_CONFLICT', expected: 3, actual: 0, changedBy: undefined });
      expect(await store.get('orders')).toBeUndefined();
    });

    it('refuses a write that does not move the version forward', async () => {
      const store = await open();
      await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));
      await expect(store.put(namespace('orders', 1), 1, audit('orders', 1, 1))).rejects.toThrow(RangeError);
      expect(await store.history('orders')).toHaveLength(1);
    });

    it('deletes a namespace at the expected version', async () => {
      const store = await open();
      await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));
      await store.remove('orders', 1, audit('orders', 1, 0, { action: 'delete' }));

      expect(await store.get('orders')).toBeUndefined();
      expect(await store.list()).toEqual([]);
    });

    it('rejects deleting at a stale version and keeps the namespace', async () => {
      const store = await open();
      await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));
      await store.put(namespace('orders', 2, { updatedBy: 'bob' }), 1, audit('orders', 1, 2));

      const err = await rejection(store.remove('orders', 1, audit('orders', 1, 0)));
      expect(err).toMatchObject({ code: 'E_VERSION_CONFLICT', expected: 1, actual: 2, changedBy: 'bob' });
      expect((await store.get('orders'))?.version).toBe(2);
    });

    it('rejects deleting a missing namespace with actual version 0', async () => {
      const store = await open();
      const err = await rejection(store.remove('ghost', 1, audit('ghost', 1, 0)));
      expect(err).toBeInstanceOf(VersionConflictError);
      expect(err).toMatchObject({ namespace: 'ghost', expected: 1, actual: 0 });
      expect(await store.history('ghost')).toEqual([]);
    });

    it('keeps the history of a namespace after it is deleted, oldest first', async () => {
      const store = await open();
      await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));
      await store.put(namespace('payments', 1), 0, audit('payments', 0, 1));
      await store.put(namespace('orders', 2), 1, audit('orders', 1, 2, { principal: 'bob', diff: '+ team' }));
      await store.remove('orders', 2, audit('orders', 2, 0, { principal: 'carol', source: 'grpc' }));

      const history = await store.history('orders');
      expect(history.map(({ id: _id, ...entry }) => entry)).toEqual([
        audit('orders', 0, 1),
        audit('orders', 1, 2, { principal: 'bob', diff: '+ team' }),
        audit('orders', 2, 0, { principal: 'carol', source: 'grpc' }),
      ]);
      const ids = history.map((entry) => entry.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(new Set(ids).size).toBe(3);
      expect(await store.history('payments')).toHaveLength(1);
    });

    it('upserts proxies and lists those whose heartbeat is at or after a time', async () => {
      const store = await open();
      await store.upsertProxy({
        proxyId: 'p-b',
        address: '10.0.0.2:8980',
        version: '0.1.0',
        lastHeartbeatMs: 1000,
      });
      await store.upsertProxy({
        proxyId: 'p-a',
        address: '10.0.0.1:8980',
        version: '0.1.0',
        lastHeartbeatMs: 2000,
      });
      await store.upsertProxy({
        proxyId: 'p-c',
        address: '10.0.0.3:8980',
        version: '0.1.0',
        lastHeartbeatMs: 500,
      });
      await store.upsertProxy({
        proxyId: 'p-b',
        address: '10.0.0.9:8980',
        version: '0.2.0',
        lastHeartbeatMs: 3000,
      });

      expect(await store.liveProxies(1000)).toEqual([
        { proxyId: 'p-a', address: '10.0.0.1:8980', version: '0.1.0', lastHeartbeatMs: 2000 },
        { proxyId: 'p-b', address: '10.0.0.9:8980', version: '0.2.0', lastHeartbeatMs: 3000 },
      ]);
      expect((await store.liveProxies(2000)).map((p) => p.proxyId)).toEqual(['p-a', 'p-b']);
      expect((await store.liveProxies(0)).map((p) => p.proxyId)).toEqual(['p-a', 'p-b', 'p-c']);
      expect(await store.liveProxies(3001)).toEqual([]);
    });

    it('migrates an existing store again without touching its data', async () => {
      const store = await open();
      await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));
      await store.migrate();
      await store.migrate();
      const reopened = await open();

      expect(await reopened.get('orders')).toEqual(namespace('orders', 1));
      expect(await reopened.history('orders')).toHaveLength(1);
    });

    it('migrates a new store from several instances starting at once', async () => {
      location = await backend.location();
      const [first, ...others] = await Promise.all([open(), open(), open(), open()]);
      await others[0]!.put(namespace('orders', 1), 0, audit('orders', 0, 1));
      expect(await first!.get('orders')).toEqual(namespace('orders', 1));
      await Promise.all([first!.migrate(), ...others.map((s) => s.migrate())]);
      expect(await others[2]!.history('orders')).toHaveLength(1);
    });

    it('refuses to work after close with StoreUnavailableError', async () => {
      const store = await open();
      await store.close();
      await expect(store.get('orders')).rejects.toBeInstanceOf(StoreUnavailableError);
      await store.close(); // closing twice is harmless
    });

    if (backend.name === 'PostgreSQL') {
      it('gives exactly one winner when two admins write the same version at once', async () => {
        const adminA = await open();
        const adminB = await open();
        const rounds = 20;
        let winners = 0;
        for (let round = 0; round < rounds; round++) {
          const expected = winners;
          const next = expected + 1;
          const results = await Promise.allSettled([
            adminA.put(
              namespace('orders', next, { updatedBy: 'a' }),
              expected,
              audit('orders', expected, next, { principal: 'a' }),
            ),
            adminB.put(
              namespace('orders', next, { updatedBy: 'b' }),
              expected,
              audit('orders', expected, next, { principal: 'b' }),
            ),
          ]);
          const fulfilled = results.filter((r) => r.status === 'fulfilled');
          const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
          expect(fulfilled, `round ${round}`).toHaveLength(1);
          expect(rejected, `round ${round}`).toHaveLength(1);
          const winner = results[0]!.status === 'fulfilled' ? 'a' : 'b';
          expect(rejected[0]!.reason).toBeInstanceOf(VersionConflictError);
          expect(rejected[0]!.reason).toMatchObject({ expected, actual: next, changedBy: winner });
          winners++;
        }

        const stored = await adminA.get('orders');
        expect(stored?.version).toBe(winners);
        expect(winners).toBe(rounds);
        const history = await adminB.history('orders');
        expect(history).toHaveLength(winners);
        expect(history.map((e) => e.versionAfter)).toEqual(Array.from({ length: rounds }, (_, i) => i + 1));
        expect(history.at(-1)?.principal).toBe(stored?.updatedBy);
      });

      it('gives exactly one winner when two admins delete at once', async () => {
        const adminA = await open();
        const adminB = await open();
        await adminA.put(namespace('orders', 1), 0, audit('orders', 0, 1));
        const results = await Promise.allSettled([
          adminA.remove('orders', 1, audit('orders', 1, 0, { principal: 'a' })),
          adminB.remove('orders', 1, audit('orders', 1, 0, { principal: 'b' })),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const loser = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(loser?.reason).toMatchObject({ code: 'E_VERSION_CONFLICT', actual: 0 });
        expect(await adminA.history('orders')).toHaveLength(2);
      });

      it('names the server without its password when it cannot be reached', async () => {
        const err = await rejection(
          openStore('postgres://prism:s3cret@127.0.0.1:1/prism_test', { connectionTimeoutMs: 2000 }),
        );
        expect(err).toBeInstanceOf(StoreUnavailableError);
        expect((err as Error).message).toContain('127.0.0.1:1');
        expect((err as Error).message).not.toContain('s3cret');
      });

      it('keeps tables in the schema it was given', async () => {
        const store = await open();
        expect(store).toBeInstanceOf(PostgresStore);
        const schema = (store as PostgresStore).schema;
        const client = await connectPostgres();
        try {
          const { rows } = await client.query<{ table_name: string }>(
            'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
            [schema],
          );
          expect(rows.map((r) => r.table_name)).toEqual([
            'audit_log',
            'namespaces',
            'proxies',
            'schema_migrations',
          ]);
        } finally {
          await client.end();
        }
      });
    }

    if (backend.name === 'SQLite') {
      it('creates the directory 0700 and the file 0600', async () => {
        const store = await open();
        expect(store).toBeInstanceOf(SqliteStore);
        const file = (store as SqliteStore).path;
        await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));

        expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
        expect(statSync(file).mode & 0o777).toBe(0o600);
        expect(statSync(`${file}-wal`).mode & 0o777).toBe(0o600);
      });

      it('says which file cannot be opened in a location that cannot be created', async () => {
        const err = await rejection(openStore('/proc/x/store.db'));
        expect(err).toBeInstanceOf(StoreUnavailableError);
        expect(err).toMatchObject({ code: 'E_STORE_UNAVAILABLE' });
        expect((err as Error).message).toContain('/proc/x/store.db');
      });

      it('changes nothing when a write finds the disk full', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'prism-store-full-'));
        const file = join(dir, 'store.db');
        const store = await openStore(file, { maxSizeBytes: 256 * 1024 });
        opened.push(store);
        try {
          await store.put(namespace('orders', 1), 0, audit('orders', 0, 1));
          const huge = 'x'.repeat(1024 * 1024);
          const err = await rejection(
            store.put(namespace('orders', 2), 1, audit('orders', 1, 2, { diff: huge })),
          );
          expect(err).toBeInstanceOf(StoreUnavailableError);
          expect((err as Error).message).toContain(file);
          expect((err as Error).message).toContain('disk is full');

          expect(await store.get('orders')).toEqual(namespace('orders', 1));
          expect(await store.history('orders')).toHaveLength(1);
          await store.put(namespace('orders', 2), 1, audit('orders', 1, 2));
          expect((await store.get('orders'))?.version).toBe(2);
        } finally {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  });
}

describe('store specs', () => {
  it('redacts the password of a PostgreSQL URL', () => {
    expect(redactSpec('postgres://prism:s3cret@db.internal:5432/prism')).toBe(
      'postgres://prism:***@db.internal:5432/prism',
    );
    expect(redactSpec('postgresql://prism@db/prism?password=s3cret&sslmode=require')).toBe(
      'postgresql://prism@db/prism?password=***&sslmode=require',
    );
    expect(redactSpec('/var/lib/prism/store.db')).toBe('/var/lib/prism/store.db');
  });
});
