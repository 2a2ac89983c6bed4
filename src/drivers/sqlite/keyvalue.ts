/**
 * sqlite keyvalue: one better-sqlite3 database, `<dataDir>/keyvalue.sqlite` (file 0600 in a 0700
 * directory, WAL) or `:memory:` without a dataDir. One table holds every namespace; the primary key
 * (namespace, key) keeps namespaces apart and orders scans. Expiry is an epoch-ms column: reads
 * ignore expired rows (lazy expiry) and a periodic sweep deletes them.
 *
 * Scans use GLOB, not LIKE: SQLite's LIKE ignores ASCII case, GLOB compares bytes and, with the
 * BINARY collation, can use the primary key index. GLOB metacharacters in the prefix are escaped
 * with brackets (`*` → `[*]`).
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BackendDownError } from '../interfaces.js';
import type { Capability, Driver, KeyValueStore, ScanPage, ScanStore, TtlStore } from '../interfaces.js';
import {
  KEYVALUE_CAPABILITIES,
  asBuffer,
  checkExpireTtl,
  checkNamespace,
  checkScanLimit,
  checkSetTtl,
  decodeKeyCursor,
  describeCause,
  encodeKeyCursor,
} from '../kv-common.js';

export interface SqliteKeyValueOptions {
  namespace: string;
  /** Directory for the database file; absent: an in-memory database private to this driver. */
  dataDir?: string;
  /** Interval of the sweep that deletes expired rows. Default 60 s. */
  sweepIntervalMs?: number;
  /** How long a write waits for another connection holding the write lock. Default 5 s. */
  busyTimeoutMs?: number;
}

export type SqliteKeyValue = Driver & KeyValueStore & TtlStore & ScanStore;

export const SQLITE_FILE_NAME = 'keyvalue.sqlite';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS prism_kv (
    namespace     TEXT NOT NULL,
    key           TEXT NOT NULL,
    value         BLOB NOT NULL,
    expires_at_ms INTEGER,
    PRIMARY KEY (namespace, key)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS prism_kv_expiry ON prism_kv (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
`;

/** SQLite result codes that mean the storage, not the request, failed. */
const STORAGE_FAILURES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|CORRUPT|NOTADB|PROTOCOL|NOMEM)/;

const LIVE = '(expires_at_ms IS NULL OR expires_at_ms > @now)';

export function createSqliteKeyValue(options: SqliteKeyValueOptions): SqliteKeyValue {
  return new SqliteKeyValueDriver({ ...options, namespace: checkNamespace(options.namespace) });
}

/** `*`, `?` and `[` are GLOB metacharacters; inside brackets each stands for itself. */
export function escapeGlob(prefix: string): string {
  return prefix.replace(/[*?[]/g, (c) => `[${c}]`);
}

type Statements = ReturnType<typeof prepare>;

function prepare(db: Database.Database) {
  return {
    set: db.prepare<{ ns: string; key: string; value: Buffer; exp: number | null }>(
      `INSERT INTO prism_kv (namespace, key, value, expires_at_ms) VALUES (@ns, @key, @value, @exp)
       ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms`,
    ),
    get: db
      .prepare<{ ns: string; key: string; now: number }>(
        `SELECT value FROM prism_kv WHERE namespace = @ns AND key = @key AND ${LIVE}`,
      )
      .pluck(),
    delete: db
      .prepare<{ ns: string; key: string; now: number }>(
        `DELETE FROM prism_kv WHERE namespace = @ns AND key = @key RETURNING ${LIVE} AS live`,
      )
      .pluck(),
    expiry: db
      .prepare<{ ns: string; key: string; now: number }>(
        `SELECT coalesce(expires_at_ms, -1) FROM prism_kv WHERE namespace = @ns AND key = @key AND ${LIVE}`,
      )
      .pluck(),
    setExpiry: db.prepare<{ ns: string; key: string; now: number; exp: number | null }>(
      `UPDATE prism_kv SET expires_at_ms = @exp WHERE namespace = @ns AND key = @key AND ${LIVE}`,
    ),
    scan: db
      .prepare<{ ns: string; glob: string; after: string; now: number; limit: number }>(
        `SELECT key FROM prism_kv
         WHERE namespace = @ns AND key GLOB @glob AND key > @after AND ${LIVE}
         ORDER BY key LIMIT @limit`,
      )
      .pluck(),
    sweep: db.prepare<{ ns: string; now: number }>(
      `DELETE FROM prism_kv WHERE namespace = @ns AND expires_at_ms IS NOT NULL AND expires_at_ms <= @now`,
    ),
  };
}

class SqliteKeyValueDriver implements SqliteKeyValue {
  readonly backend = 'sqlite';
  readonly capabilities: ReadonlySet<Capability> = KEYVALUE_CAPABILITIES;
  private db: Database.Database | undefined;
  private statements: Statements | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly ns: string;

  constructor(private readonly options: SqliteKeyValueOptions) {
    this.ns = options.namespace;
  }

  private get where(): string {
    return this.options.dataDir === undefined
      ? 'an in-memory database'
      : join(this.options.dataDir, SQLITE_FILE_NAME);
  }

  async connect(): Promise<void> {
    if (this.db !== undefined) return;
    let db: Database.Database | undefined;
    try {
      const file = this.options.dataDir === undefined ? ':memory:' : openPrivateFile(this.options.dataDir);
      db = new Database(file, { timeout: this.options.busyTimeoutMs ?? 5_000 });
      if (file !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(SCHEMA);
      this.statements = prepare(db);
    } catch (err) {
      db?.close();
      throw new BackendDownError('sqlite', `cannot open ${this.where} (${describeCause(err)})`, err);
    }
    this.db = db;
    this.sweeper = setInterval(() => {
      try {
        this.statements?.sweep.run({ ns: this.ns, now: Date.now() });
      } catch {
        // A failed sweep is retried on the next tick; reads ignore expired rows meanwhile.
      }
    }, this.options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  async health(): Promise<void> {
    this.run((db) => db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    const db = this.db;
    this.db = undefined;
    this.statements = undefined;
    // better-sqlite3 is synchronous: no statement is in flight while this runs.
    db?.close();
  }

  /** Runs `fn` with the open database; storage failures become BackendDownError. */
  private run<T>(fn: (db: Database.Database, st: Statements) => T): T {
    const { db, statements } = this;
    if (db === undefined || statements === undefined) {
      throw new BackendDownError('sqlite', `${this.where} is not open (call connect() first)`);
    }
    try {
      return fn(db, statements);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && STORAGE_FAILURES.test(code)) {
        throw new BackendDownError('sqlite', `${this.where}: ${describeCause(err)}`, err);
      }
      throw err;
    }
  }

  async set(key: string, value: Uint8Array, ttlMs?: number): Promise<void> {
    const ttl = checkSetTtl(ttlMs);
    const exp = ttl === 0 ? null : Date.now() + ttl;
    this.run((_, st) => st.set.run({ ns: this.ns, key, value: asBuffer(value), exp }));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const value = this.run((_, st) => st.get.get({ ns: this.ns, key, now: Date.now() })) as
      Buffer | undefined;
    return value ?? undefined;
  }

  async delete(key: string): Promise<boolean> {
    return this.run((_, st) => st.delete.get({ ns: this.ns, key, now: Date.now() })) === 1;
  }

  async exists(key: string): Promise<boolean> {
    return this.run((_, st) => st.expiry.get({ ns: this.ns, key, now: Date.now() })) !== undefined;
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const ttl = checkExpireTtl(ttlMs);
    const now = Date.now();
    return this.run((_, st) => st.setExpiry.run({ ns: this.ns, key, now, exp: now + ttl })).changes > 0;
  }

  async ttl(key: string): Promise<number> {
    const now = Date.now();
    const exp = this.run((_, st) => st.expiry.get({ ns: this.ns, key, now })) as number | undefined;
    if (exp === undefined) return -2;
    return exp === -1 ? -1 : exp - now;
  }

  async persist(key: string): Promise<boolean> {
    return (
      this.run((_, st) => st.setExpiry.run({ ns: this.ns, key, now: Date.now(), exp: null })).changes > 0
    );
  }

  async scan(prefix: string, options: { limit: number; cursor?: string }): Promise<ScanPage> {
    const limit = checkScanLimit(options.limit);
    const after = decodeKeyCursor(options.cursor) ?? '';
    const glob = `${escapeGlob(prefix)}*`;
    // One row more than the page tells whether another page follows.
    const rows = this.run((_, st) =>
      st.scan.all({ ns: this.ns, glob, after, now: Date.now(), limit: limit + 1 }),
    ) as string[];
    if (rows.length <= limit) return { keys: rows };
    const keys = rows.slice(0, limit);
    return { keys, cursor: encodeKeyCursor(keys[keys.length - 1] as string) };
  }
}

/** Creates the directory (0700) if needed and the database file (0600) before SQLite opens it. */
export function openPrivateFile(dataDir: string, name = SQLITE_FILE_NAME): string {
  // The mode applies to directories this call creates; an existing directory keeps its own.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, name);
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  return file;
}
