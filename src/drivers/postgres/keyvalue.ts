/**
 * postgres keyvalue: a pg Pool and one table for every namespace, `prism_kv`, keyed by
 * (namespace, key). Keys use the "C" collation so that ordering is bytewise and `LIKE 'prefix%'`
 * can use the primary key index. Values are bytea; expiry is an epoch-ms bigint compared with the
 * database clock, so proxies with skewed clocks agree. Reads ignore expired rows (lazy expiry);
 * a periodic sweep deletes them.
 *
 * The table is created on connect under a transaction-scoped advisory lock, because concurrent
 * `CREATE TABLE IF NOT EXISTS` in PostgreSQL can fail with a unique violation on pg_type.
 */
import pg from 'pg';
import { poolConfig } from './connection.js';
import { isPostgresUnavailable as isDown } from './errors.js';
import { transactionOn } from './transaction.js';
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
  safeTarget,
} from '../kv-common.js';

export interface PostgresKeyValueOptions {
  /** postgres://[user:password@]host:port/database */
  endpoint: string;
  credentials?: { username: string; password: string };
  namespace: string;
  /** Pool size. Default 10. */
  maxConnections?: number;
  /** Interval of the sweep that deletes expired rows. Default 60 s. */
  sweepIntervalMs?: number;
}

export type PostgresKeyValue = Driver & KeyValueStore & TtlStore & ScanStore;

/** Key of the advisory lock that serialises schema creation across processes ("prismkv1"). */
const SCHEMA_LOCK = 0x7072_6973_6d6b_7631n;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS prism_kv (
    namespace     text COLLATE "C" NOT NULL,
    key           text COLLATE "C" NOT NULL,
    value         bytea NOT NULL,
    expires_at_ms bigint,
    PRIMARY KEY (namespace, key)
  );
  CREATE INDEX IF NOT EXISTS prism_kv_expiry ON prism_kv (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
`;

const NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
const LIVE = `(expires_at_ms IS NULL OR expires_at_ms > ${NOW_MS})`;

/** Named statements: each pooled connection prepares them once. */
const SQL = {
  set: {
    name: 'prism_kv_set',
    text: `INSERT INTO prism_kv (namespace, key, value, expires_at_ms)
           VALUES ($1, $2, $3, CASE WHEN $4::bigint = 0 THEN NULL ELSE ${NOW_MS} + $4::bigint END)
           ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms`,
  },
  get: {
    name: 'prism_kv_get',
    text: `SELECT value FROM prism_kv WHERE namespace = $1 AND key = $2 AND ${LIVE}`,
  },
  delete: {
    name: 'prism_kv_delete',
    text: `DELETE FROM prism_kv WHERE namespace = $1 AND key = $2 RETURNING ${LIVE} AS live`,
  },
  ttl: {
    name: 'prism_kv_ttl',
    text: `SELECT CASE WHEN expires_at_ms IS NULL THEN -1 ELSE greatest(expires_at_ms - ${NOW_MS}, 1) END AS ttl
           FROM prism_kv WHERE namespace = $1 AND key = $2 AND ${LIVE}`,
  },
  expire: {
    name: 'prism_kv_expire',
    text: `UPDATE prism_kv SET expires_at_ms = ${NOW_MS} + $3::bigint WHERE namespace = $1 AND key = $2 AND ${LIVE}`,
  },
  persist: {
    name: 'prism_kv_persist',
    text: `UPDATE prism_kv SET expires_at_ms = NULL WHERE namespace = $1 AND key = $2 AND ${LIVE}`,
  },
  // LIKE states the condition; the explicit range lets a generic (prepared) plan use the index,
  // since the planner turns `LIKE $2` into an index range only when it sees the pattern's value.
  scan: {
    name: 'prism_kv_scan',
    text: `SELECT key FROM prism_kv
           WHERE namespace = $1 AND key LIKE $2 ESCAPE '\\' AND key > $3 AND key >= $5 AND key < $6 AND ${LIVE}
           ORDER BY key LIMIT $4`,
  },
  /** For the empty prefix (and a prefix with no successor): no upper bound. */
  scanOpen: {
    name: 'prism_kv_scan_open',
    text: `SELECT key FROM prism_kv
           WHERE namespace = $1 AND key LIKE $2 ESCAPE '\\' AND key > $3 AND key >= $5 AND ${LIVE}
           ORDER BY key LIMIT $4`,
  },
  sweep: {
    name: 'prism_kv_sweep',
    text: `DELETE FROM prism_kv WHERE namespace = $1 AND expires_at_ms <= ${NOW_MS}`,
  },
} as const;

/** Escapes LIKE metacharacters (`%`, `_`) and the escape character itself. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The smallest string greater than every string that starts with `prefix`, in code point order
 * (which is the byte order of UTF-8 and of the "C" collation); undefined when there is none.
 */
export function successor(prefix: string): string | undefined {
  const chars = Array.from(prefix);
  while (chars.length > 0) {
    const last = (chars.pop() as string).codePointAt(0) as number;
    if (last < 0x10ffff) {
      const next = last === 0xd7ff ? 0xe000 : last + 1;
      return chars.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

export function createPostgresKeyValue(options: PostgresKeyValueOptions): PostgresKeyValue {
  return new PostgresKeyValueDriver(options);
}

class PostgresKeyValueDriver implements PostgresKeyValue {
  readonly backend = 'postgres';
  readonly capabilities: ReadonlySet<Capability> = KEYVALUE_CAPABILITIES;
  private readonly pool: pg.Pool;
  private readonly ns: string;
  private readonly target: string;
  private sweeper: NodeJS.Timeout | undefined;
  private connected = false;
  private closed = false;

  constructor(private readonly options: PostgresKeyValueOptions) {
    this.ns = checkNamespace(options.namespace);
    this.target = safeTarget(options.endpoint);
    this.pool = new pg.Pool({
      ...poolConfig(options.endpoint, options.credentials),
      // Lets operators (and tests) tell the driver's sessions apart in pg_stat_activity.
      application_name: `prism-kv/${this.ns}`.slice(0, 63),
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: 2_000,
      idleTimeoutMillis: 30_000,
    });
    // An idle client losing its connection emits on the pool; the next query reports it.
    this.pool.on('error', () => {});
  }

  private async query<R extends pg.QueryResultRow>(
    what: string,
    config: { name?: string; text: string },
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (this.closed) throw new BackendDownError('postgres', `driver for ${this.target} is closed`);
    try {
      return await this.pool.query<R>({ ...config, values });
    } catch (err) {
      if (isDown(err)) {
        throw new BackendDownError('postgres', `${what} at ${this.target} (${describeCause(err)})`, err);
      }
      throw err;
    }
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    if (this.closed) throw new BackendDownError('postgres', `driver for ${this.target} is closed`);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new BackendDownError('postgres', `cannot connect to ${this.target} (${describeCause(err)})`, err);
    }
    try {
      await transactionOn(client, async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK.toString()]);
        await c.query(SCHEMA);
      });
    } catch (err) {
      if (isDown(err)) {
        throw new BackendDownError(
          'postgres',
          `cannot create the table at ${this.target} (${describeCause(err)})`,
          err,
        );
      }
      throw err;
    }
    this.connected = true;
    this.sweeper = setInterval(() => {
      this.query('sweep', SQL.sweep, [this.ns]).catch(() => {
        // Retried on the next tick; reads ignore expired rows meanwhile.
      });
    }, this.options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  async health(): Promise<void> {
    await this.query('health check failed', { text: 'SELECT 1' }, []);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    // Pool.end() waits for checked-out clients, i.e. for in-flight queries.
    await this.pool.end();
  }

  async set(key: string, value: Uint8Array, ttlMs?: number): Promise<void> {
    const ttl = checkSetTtl(ttlMs);
    await this.query('set failed', SQL.set, [this.ns, key, asBuffer(value), ttl]);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const result = await this.query<{ value: Buffer }>('get failed', SQL.get, [this.ns, key]);
    return result.rows[0]?.value;
  }

  async delete(key: string): Promise<boolean> {
    const result = await this.query<{ live: boolean }>('delete failed', SQL.delete, [this.ns, key]);
    return result.rows[0]?.live === true;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.ttl(key)) !== -2;
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const ttl = checkExpireTtl(ttlMs);
    const result = await this.query('expire failed', SQL.expire, [this.ns, key, ttl]);
    return (result.rowCount ?? 0) > 0;
  }

  async ttl(key: string): Promise<number> {
    const result = await this.query<{ ttl: string }>('ttl failed', SQL.ttl, [this.ns, key]);
    const row = result.rows[0];
    return row === undefined ? -2 : Number(row.ttl);
  }

  async persist(key: string): Promise<boolean> {
    const result = await this.query('persist failed', SQL.persist, [this.ns, key]);
    return (result.rowCount ?? 0) > 0;
  }

  async scan(prefix: string, options: { limit: number; cursor?: string }): Promise<ScanPage> {
    const limit = checkScanLimit(options.limit);
    const after = decodeKeyCursor(options.cursor) ?? '';
    // One row more than the page tells whether another page follows.
    const upper = successor(prefix);
    const values = [this.ns, `${escapeLike(prefix)}%`, after, limit + 1, prefix];
    const result =
      upper === undefined
        ? await this.query<{ key: string }>('scan failed', SQL.scanOpen, values)
        : await this.query<{ key: string }>('scan failed', SQL.scan, [...values, upper]);
    const rows = result.rows.map((row) => row.key);
    if (rows.length <= limit) return { keys: rows };
    const keys = rows.slice(0, limit);
    return { keys, cursor: encodeKeyCursor(keys[keys.length - 1] as string) };
  }
}
