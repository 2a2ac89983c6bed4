/**
 * The default control-plane store: one SQLite file (better-sqlite3, WAL), private to its owner.
 *
 * Every write runs in a `BEGIN IMMEDIATE` transaction, so the version read for the compare-and-set
 * cannot change before the write, even with another process on the same file. Storage failures
 * (full disk, I/O error, read-only or unopenable file) become StoreUnavailableError naming the
 * file; the failed transaction is rolled back, so nothing is half written.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { runMigrations, type Migration } from '../drivers/sqlite/migrations.js';
import {
  VersionConflictError,
  type AuditEntry,
  type AuditRecord,
  type NamespaceStore,
  type ProxyRecord,
  type StoredNamespace,
} from './store.js';
import { checkVersions } from './open-store.js';
import { SqliteSchemaStore } from './schemas/store-sqlite.js';
import { StoreUnavailableError } from './store.js';
import {
  toAuditEntry,
  toNamespace,
  toProxy,
  type AuditRow,
  type NamespaceRow,
  type ProxyRow,
} from './store-rows.js';

export interface SqliteStoreOptions {
  /** How long a write waits for another process holding the file's write lock. Default 5 s. */
  busyTimeoutMs?: number;
  /**
   * Upper bound on the database size; a write past it fails like a full disk (SQLITE_FULL).
   * Rounded down to whole pages. Unlimited by default.
   */
  maxSizeBytes?: number;
}

/** Numbered migrations; a migration is never edited once released, only appended. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE namespaces (
        name          TEXT PRIMARY KEY,
        team          TEXT NOT NULL,
        version       INTEGER NOT NULL,
        declaration   TEXT NOT NULL,
        assignment    TEXT NOT NULL,
        content_hash  TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        updated_by    TEXT NOT NULL
      );
      CREATE TABLE audit_log (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace      TEXT NOT NULL,
        action         TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
        principal      TEXT NOT NULL,
        at_ms          INTEGER NOT NULL,
        version_before INTEGER NOT NULL,
        version_after  INTEGER NOT NULL,
        diff           TEXT NOT NULL,
        source         TEXT NOT NULL
      );
      CREATE INDEX audit_log_namespace ON audit_log (namespace, id);
      CREATE TABLE proxies (
        proxy_id          TEXT PRIMARY KEY,
        address           TEXT NOT NULL,
        version           TEXT NOT NULL,
        last_heartbeat_ms INTEGER NOT NULL
      );
      CREATE INDEX proxies_last_heartbeat ON proxies (last_heartbeat_ms);
    `,
  },
];

/** SQLite result codes that mean "the storage is the problem", with what to tell the operator. */
const UNAVAILABLE_CODES: ReadonlyArray<[prefix: string, reason: string]> = [
  ['SQLITE_FULL', 'the disk is full'],
  ['SQLITE_IOERR', 'I/O error'],
  ['SQLITE_READONLY', 'the file is read-only'],
  ['SQLITE_CANTOPEN', 'the file cannot be opened'],
];

/** File-system error codes when creating the directory or the file. */
const FS_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'the directory does not exist and cannot be created',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
  ENOTDIR: 'a parent of the path is not a directory',
  EISDIR: 'the path is a directory',
};

export class SqliteStore implements NamespaceStore {
  /** Absolute path of the database file. */
  readonly path: string;
  private readonly db: Database.Database;
  private closed = false;
  /** Prepared once per SQL text: preparing on every call was most of a GetNamespace's cost. */
  private readonly statements = new Map<string, Database.Statement>();

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.path = resolve(path);
    try {
      makeDirectory(dirname(this.path));
      // Create the file 0600 before SQLite opens it (SQLite would use 0644 less the umask); the
      // -wal and -shm files copy the database file's mode.
      closeSync(openSync(this.path, 'a', 0o600));
      chmodSync(this.path, 0o600);
    } catch (err) {
      throw this.unavailable(err) ?? err;
    }
    try {
      this.db = new Database(this.path, { timeout: options.busyTimeoutMs ?? 5000 });
    } catch (err) {
      throw this.unavailable(err) ?? err;
    }
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      if (options.maxSizeBytes !== undefined) {
        const pageSize = this.db.pragma('page_size', { simple: true }) as number;
        this.db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxSizeBytes / pageSize))}`);
      }
    } catch (err) {
      this.db.close();
      throw this.unavailable(err) ?? err;
    }
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  async migrate(): Promise<void> {
    this.guard(() => runMigrations(this.db, 'schema_migrations', MIGRATIONS));
  }

  async get(name: string): Promise<StoredNamespace | undefined> {
    return this.guard(() => {
      const row = this.statement('SELECT * FROM namespaces WHERE name = ?').get(name) as
        NamespaceRow | undefined;
      return row && toNamespace(row);
    });
  }

  async list(): Promise<StoredNamespace[]> {
    return this.guard(() =>
      (this.statement('SELECT * FROM namespaces ORDER BY name').all() as NamespaceRow[]).map(toNamespace),
    );
  }

  async put(record: StoredNamespace, expectedVersion: number, audit: AuditRecord): Promise<void> {
    checkVersions(record.name, expectedVersion, record.version);
    this.guard(() =>
      this.db
        .transaction(() => {
          this.expectVersion(record.name, expectedVersion);
          const values = {
            name: record.name,
            team: record.team,
            version: record.version,
            declaration: JSON.stringify(record.declaration ?? null),
            assignment: JSON.stringify(record.assignment ?? null),
            content_hash: record.contentHash,
            updated_at_ms: record.updatedAtMs,
            updated_by: record.updatedBy,
          };
          if (expectedVersion === 0) {
            this.statement(
              `INSERT INTO namespaces (name, team, version, declaration, assignment, content_hash, updated_at_ms, updated_by)
                 VALUES (@name, @team, @version, @declaration, @assignment, @content_hash, @updated_at_ms, @updated_by)`,
            ).run(values);
          } else {
            this.statement(
              `UPDATE namespaces SET team = @team, version = @version, declaration = @declaration,
                   assignment = @assignment, content_hash = @content_hash, updated_at_ms = @updated_at_ms,
                   updated_by = @updated_by
                 WHERE name = @name`,
            ).run(values);
          }
          this.insertAudit(audit);
        })
        .immediate(),
    );
  }

  async remove(name: string, expectedVersion: number, audit: AuditRecord): Promise<void> {
    this.guard(() =>
      this.db
        .transaction(() => {
          this.expectVersion(name, expectedVersion);
          this.statement('DELETE FROM namespaces WHERE name = ?').run(name);
          this.insertAudit(audit);
        })
        .immediate(),
    );
  }

  async history(name: string): Promise<AuditEntry[]> {
    return this.guard(() =>
      (this.statement('SELECT * FROM audit_log WHERE namespace = ? ORDER BY id').all(name) as AuditRow[]).map(
        toAuditEntry,
      ),
    );
  }

  async upsertProxy(proxy: ProxyRecord): Promise<void> {
    this.guard(() =>
      this.statement(
        `INSERT INTO proxies (proxy_id, address, version, last_heartbeat_ms) VALUES (?, ?, ?, ?)
           ON CONFLICT (proxy_id) DO UPDATE SET address = excluded.address, version = excluded.version,
             last_heartbeat_ms = excluded.last_heartbeat_ms`,
      ).run(proxy.proxyId, proxy.address, proxy.version, proxy.lastHeartbeatMs),
    );
  }

  async liveProxies(sinceMs: number): Promise<ProxyRecord[]> {
    return this.guard(() =>
      (
        this.statement('SELECT * FROM proxies WHERE last_heartbeat_ms >= ? ORDER BY proxy_id').all(
          sinceMs,
        ) as ProxyRow[]
      ).map(toProxy),
    );
  }

  schemaStore(): SqliteSchemaStore {
    return new SqliteSchemaStore(this.db);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  /** Inside a write transaction: throws VersionConflictError unless the stored version is `expected`. */
  private expectVersion(name: string, expected: number): void {
    const row = this.statement('SELECT version, updated_by FROM namespaces WHERE name = ?').get(name) as
      { version: number; updated_by: string } | undefined;
    const actual = row?.version ?? 0;
    if (actual !== expected) throw new VersionConflictError(name, expected, actual, row?.updated_by);
  }

  private insertAudit(audit: AuditRecord): void {
    this.db
      .prepare(
        `INSERT INTO audit_log (namespace, action, principal, at_ms, version_before, version_after, diff, source)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        audit.namespace,
        audit.action,
        audit.principal,
        audit.atMs,
        audit.versionBefore,
        audit.versionAfter,
        audit.diff,
        audit.source,
      );
  }

  /** Runs `fn`, turning storage failures into StoreUnavailableError. */
  private guard<T>(fn: () => T): T {
    if (this.closed) throw new StoreUnavailableError(this.path, 'the store is closed');
    try {
      return fn();
    } catch (err) {
      throw this.unavailable(err) ?? err;
    }
  }

  private unavailable(err: unknown): StoreUnavailableError | undefined {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code !== 'string') return undefined;
    const reason =
      UNAVAILABLE_CODES.find(([prefix]) => code === prefix || code.startsWith(`${prefix}_`))?.[1] ??
      FS_REASONS[code];
    if (reason === undefined) return undefined;
    return new StoreUnavailableError(`SQLite file ${this.path}`, `${reason} (${code})`, {
      cause: err,
      hint: 'check that the directory exists, is writable by this user and that the disk has space',
    });
  }
}

/**
 * `mkdir -p` with mode 0700 for the directories it creates (existing ones are left as they are).
 * Not `mkdirSync(dir, { recursive: true })`: under procfs, mkdir of a missing child fails with
 * ENOENT although the parent exists, and Node's recursive mkdir then retries forever at 100% CPU
 * (`/proc/x/store.db` hangs the process). Here each level is created once and any failure is final.
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let current = dir; !existsSync(current); current = dirname(current)) {
    missing.unshift(current);
    if (dirname(current) === current) break;
  }
  for (const level of missing) {
    try {
      mkdirSync(level, { mode: 0o700 });
    } catch (err) {
      // Created meanwhile by someone else is fine; a dangling symlink or a file is not.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(level).isDirectory()) throw err;
    }
  }
}
