/**
 * The shared control-plane store: PostgreSQL, for several admin instances over one state.
 *
 * The compare-and-set is in the write itself (`UPDATE ... WHERE version = expected`,
 * `INSERT ... ON CONFLICT DO NOTHING`, `DELETE ... WHERE version = expected`): PostgreSQL makes a
 * concurrent writer of the same row wait for the first to finish and then re-check the condition,
 * so of two admins writing the same version exactly one changes a row; the other sees rowCount 0
 * and gets VersionConflictError. The audit row is written in the same transaction.
 *
 * All tables live in one schema (default `public`), named by the `schema` option.
 */
import pg from 'pg';
import { classifyPostgresError } from '../drivers/postgres/errors.js';
import { runMigrations, type Migration } from '../drivers/postgres/migrations.js';
import { inTransaction } from '../drivers/postgres/transaction.js';
import {
  VersionConflictError,
  type AuditEntry,
  type AuditRecord,
  type NamespaceStore,
  type ProxyRecord,
  type StoredNamespace,
} from './store.js';
import { checkVersions, redactSpec } from './open-store.js';
import { PostgresSchemaStore } from './schemas/store-postgres.js';
import { StoreUnavailableError } from './store.js';
import {
  toAuditEntry,
  toNamespace,
  toProxy,
  type AuditRow,
  type NamespaceRow,
  type ProxyRow,
} from './store-rows.js';

export interface PostgresStoreOptions {
  /** postgres:// or postgresql:// URL. */
  connectionString: string;
  /** Schema holding the tables; created by `migrate()` if missing. Default `public`. */
  schema?: string;
  /** Pool size. Default 4. */
  maxConnections?: number;
  /** How long to wait for a connection. Default 5 s. */
  connectionTimeoutMs?: number;
}

/**
 * Numbered migrations, `{schema}` standing for the quoted schema name. A migration is never edited
 * once released, only appended. Declarations and assignments are `json`, not `jsonb`: `json` keeps
 * the canonical key order, so a declaration reads back exactly as it was hashed.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE {schema}.namespaces (
        name          text PRIMARY KEY,
        team          text NOT NULL,
        version       integer NOT NULL,
        declaration   json NOT NULL,
        assignment    json NOT NULL,
        content_hash  text NOT NULL,
        updated_at_ms bigint NOT NULL,
        updated_by    text NOT NULL
      );
      CREATE TABLE {schema}.audit_log (
        id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        namespace      text NOT NULL,
        action         text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
        principal      text NOT NULL,
        at_ms          bigint NOT NULL,
        version_before integer NOT NULL,
        version_after  integer NOT NULL,
        diff           text NOT NULL,
        source         text NOT NULL
      );
      CREATE INDEX audit_log_namespace ON {schema}.audit_log (namespace, id);
      CREATE TABLE {schema}.proxies (
        proxy_id          text PRIMARY KEY,
        address           text NOT NULL,
        version           text NOT NULL,
        last_heartbeat_ms bigint NOT NULL
      );
      CREATE INDEX proxies_last_heartbeat ON {schema}.proxies (last_heartbeat_ms);
    `,
  },
];

export class PostgresStore implements NamespaceStore {
  readonly schema: string;
  /** Where the store is, for messages: the URL without its password. */
  readonly target: string;
  private readonly pool: pg.Pool;
  private readonly q: string;
  private closed = false;

  constructor(options: PostgresStoreOptions) {
    this.schema = options.schema ?? 'public';
    if (this.schema === '') throw new RangeError('PostgreSQL schema name must not be empty');
    this.q = `"${this.schema.replaceAll('"', '""')}"`;
    this.target =
      `PostgreSQL ${redactSpec(options.connectionString)}` +
      (this.schema === 'public' ? '' : ` (schema ${this.schema})`);
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 4,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
    });
    // An idle client whose server connection drops emits 'error' on the pool; without a listener
    // that would crash the process. The pool discards the client and the next query reconnects.
    this.pool.on('error', () => {});
  }

  async migrate(): Promise<void> {
    await this.transaction((client) =>
      runMigrations(client, {
        schema: this.schema,
        quotedSchema: this.q,
        table: 'schema_migrations',
        lock: 'prismctl.store.migrate',
        migrations: MIGRATIONS,
      }),
    );
  }

  async get(name: string): Promise<StoredNamespace | undefined> {
    const { rows } = await this.query<NamespaceRow>(`SELECT * FROM ${this.q}.namespaces WHERE name = $1`, [
      name,
    ]);
    return rows[0] && toNamespace(rows[0]);
  }

  async list(): Promise<StoredNamespace[]> {
    const { rows } = await this.query<NamespaceRow>(`SELECT * FROM ${this.q}.namespaces ORDER BY name`);
    return rows.map(toNamespace);
  }

  async put(record: StoredNamespace, expectedVersion: number, audit: AuditRecord): Promise<void> {
    checkVersions(record.name, expectedVersion, record.version);
    const values = [
      record.name,
      record.team,
      record.version,
      JSON.stringify(record.declaration ?? null),
      JSON.stringify(record.assignment ?? null),
      record.contentHash,
      record.updatedAtMs,
      record.updatedBy,
    ];
    await this.transaction(async (client) => {
      const result =
        expectedVersion === 0
          ? await client.query(
              `INSERT INTO ${this.q}.namespaces
                 (name, team, version, declaration, assignment, content_hash, updated_at_ms, updated_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (name) DO NOTHING`,
              values,
            )
          : await client.query(
              `UPDATE ${this.q}.namespaces
                  SET team = $2, version = $3, declaration = $4, assignment = $5, content_hash = $6,
                      updated_at_ms = $7, updated_by = $8
                WHERE name = $1 AND version = $9`,
              [...values, expectedVersion],
            );
      if (result.rowCount !== 1) await this.conflict(client, record.name, expectedVersion);
      await this.insertAudit(client, audit);
    });
  }

  async remove(name: string, expectedVersion: number, audit: AuditRecord): Promise<void> {
    await this.transaction(async (client) => {
      const result = await client.query(`DELETE FROM ${this.q}.namespaces WHERE name = $1 AND version = $2`, [
        name,
        expectedVersion,
      ]);
      if (result.rowCount !== 1) await this.conflict(client, name, expectedVersion);
      await this.insertAudit(client, audit);
    });
  }

  async history(name: string): Promise<AuditEntry[]> {
    const { rows } = await this.query<AuditRow>(
      `SELECT * FROM ${this.q}.audit_log WHERE namespace = $1 ORDER BY id`,
      [name],
    );
    return rows.map(toAuditEntry);
  }

  async upsertProxy(proxy: ProxyRecord): Promise<void> {
    await this.query(
      `INSERT INTO ${this.q}.proxies (proxy_id, address, version, last_heartbeat_ms) VALUES ($1, $2, $3, $4)
       ON CONFLICT (proxy_id) DO UPDATE SET address = EXCLUDED.address, version = EXCLUDED.version,
         last_heartbeat_ms = EXCLUDED.last_heartbeat_ms`,
      [proxy.proxyId, proxy.address, proxy.version, proxy.lastHeartbeatMs],
    );
  }

  async liveProxies(sinceMs: number): Promise<ProxyRecord[]> {
    const { rows } = await this.query<ProxyRow>(
      `SELECT * FROM ${this.q}.proxies WHERE last_heartbeat_ms >= $1 ORDER BY proxy_id`,
      [sinceMs],
    );
    return rows.map(toProxy);
  }

  schemaStore(): PostgresSchemaStore {
    return new PostgresSchemaStore(this.pool, this.q, this.schema);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /** After a compare-and-set changed no row: reads who holds the namespace now, and throws. */
  private async conflict(client: pg.PoolClient, name: string, expected: number): Promise<never> {
    const { rows } = await client.query<{ version: number; updated_by: string }>(
      `SELECT version, updated_by FROM ${this.q}.namespaces WHERE name = $1`,
      [name],
    );
    throw new VersionConflictError(name, expected, rows[0]?.version ?? 0, rows[0]?.updated_by);
  }

  private async insertAudit(client: pg.PoolClient, audit: AuditRecord): Promise<void> {
    await client.query(
      `INSERT INTO ${this.q}.audit_log
         (namespace, action, principal, at_ms, version_before, version_after, diff, source)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        audit.namespace,
        audit.action,
        audit.principal,
        audit.atMs,
        audit.versionBefore,
        audit.versionAfter,
        audit.diff,
        audit.source,
      ],
    );
  }

  private async query<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    try {
      return await this.pool.query<R>(sql, params);
    } catch (err) {
      throw this.unavailable(err) ?? err;
    }
  }

  /** Runs `fn` in BEGIN/COMMIT on one pooled connection; rolls back on any error. */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await inTransaction(this.pool, fn);
    } catch (err) {
      throw this.unavailable(err) ?? err;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreUnavailableError(this.target, 'the store is closed');
  }

  private unavailable(err: unknown): StoreUnavailableError | undefined {
    if (!(err instanceof Error) || err instanceof VersionConflictError) return undefined;
    const { kind, reason } = classifyPostgresError(err);
    if (kind === 'statement') return undefined;
    return new StoreUnavailableError(this.target, `${reason}: ${err.message}`, {
      cause: err,
      hint: 'check that PostgreSQL is running and reachable, and the user, password and database in the URL',
    });
  }
}
