/**
 * postgres mailbox (capability `mailbox`): a pg Pool of its own and the two tables of
 * ../mailbox-sql.ts, created with the first mailbox opened (under a transaction-scoped advisory
 * lock, as concurrent `CREATE TABLE IF NOT EXISTS` can fail), so a keyvalue-only slot creates
 * nothing. A record and its indexed headers are inserted by one statement (a data-modifying CTE),
 * so a batch is one transaction of one statement per record.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { poolConfig } from './connection.js';
import { isPostgresUnavailable as isDown } from './errors.js';
import { inTransaction } from './transaction.js';
import { BackendDownError } from '../interfaces.js';
import type {
  Capability,
  Driver,
  DriverOptions,
  MailboxCapability,
  MailboxRecord,
  MailboxStore,
} from '../interfaces.js';
import { checkNamespace, describeCause, safeTarget } from '../kv-common.js';
import { indexedPairs, SqlMailbox, type MailboxDialect, type Statement } from '../mailbox-sql.js';

/** Key of the advisory lock that serialises schema creation across processes ("prismmb1"). */
const SCHEMA_LOCK = 0x7072_6973_6d6d_6231n;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS prism_mailbox (
    seq             bigserial PRIMARY KEY,
    box             text NOT NULL,
    message_id      text NOT NULL,
    topic           text NOT NULL,
    published_at_ms bigint NOT NULL,
    stored_at_ms    bigint NOT NULL,
    correlation_id  text NOT NULL,
    subject         text NOT NULL,
    tenant          text NOT NULL,
    headers         text NOT NULL,
    meta            bytea NOT NULL,
    payload         bytea NOT NULL,
    payload_size    bigint NOT NULL,
    payload_omitted smallint NOT NULL,
    UNIQUE (box, message_id)
  );
  CREATE INDEX IF NOT EXISTS prism_mailbox_time ON prism_mailbox (box, published_at_ms, seq);
  CREATE INDEX IF NOT EXISTS prism_mailbox_correlation ON prism_mailbox (box, correlation_id, published_at_ms, seq);
  CREATE INDEX IF NOT EXISTS prism_mailbox_subject ON prism_mailbox (box, subject, published_at_ms, seq);
  CREATE INDEX IF NOT EXISTS prism_mailbox_tenant ON prism_mailbox (box, tenant, published_at_ms, seq);
  CREATE TABLE IF NOT EXISTS prism_mailbox_header (
    box             text NOT NULL,
    name            text NOT NULL,
    value           text NOT NULL,
    published_at_ms bigint NOT NULL,
    seq             bigint NOT NULL,
    PRIMARY KEY (box, name, value, published_at_ms, seq)
  );
  CREATE INDEX IF NOT EXISTS prism_mailbox_header_seq ON prism_mailbox_header (seq);
`;

const INSERT = {
  name: 'prism_mailbox_insert',
  text: `WITH row AS (
           INSERT INTO prism_mailbox (box, message_id, topic, published_at_ms, stored_at_ms, correlation_id,
             subject, tenant, headers, meta, payload, payload_size, payload_omitted)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (box, message_id) DO NOTHING
           RETURNING seq, published_at_ms),
         header AS (
           INSERT INTO prism_mailbox_header (box, name, value, published_at_ms, seq)
           SELECT $1, h.name, h.value, row.published_at_ms, row.seq
           FROM row, unnest($14::text[], $15::text[]) AS h(name, value))
         SELECT seq FROM row`,
};

/** `?` placeholders as PostgreSQL's `$1, $2, ...`. */
function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

export type PostgresMailboxDriver = Driver & MailboxCapability;

export function createPostgresMailbox(options: DriverOptions): PostgresMailboxDriver {
  return new PostgresMailbox(options);
}

class PostgresMailbox implements PostgresMailboxDriver, MailboxDialect {
  readonly backend = 'postgres';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['mailbox']);
  private readonly ns: string;
  private readonly target: string;
  private pool: pg.Pool | undefined;
  private schema: Promise<void> | undefined;
  private closed = true;

  constructor(private readonly options: DriverOptions) {
    this.ns = checkNamespace(options.namespace);
    this.target = safeTarget(options.endpoint);
  }

  /** The pool opens with the first mailbox. */
  async connect(): Promise<void> {
    this.closed = false;
  }

  async health(): Promise<void> {
    if (this.pool) await this.query('health check failed', { text: 'SELECT 1' }, []);
  }

  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    this.schema = undefined;
    // Pool.end() waits for checked-out clients, i.e. for in-flight queries.
    await pool?.end();
  }

  async openMailbox(name: string, options: { indexedHeaders: readonly string[] }): Promise<MailboxStore> {
    this.schema ??= this.createSchema().catch((err: unknown) => {
      this.schema = undefined;
      throw err;
    });
    await this.schema;
    return new SqlMailbox(`${this.ns}/${name}`, options.indexedHeaders, this);
  }

  private openPool(): pg.Pool {
    if (this.pool) return this.pool;
    if (this.closed)
      throw new BackendDownError('postgres', `mailbox driver for ${this.target} is not connected`);
    const pool = new pg.Pool({
      ...poolConfig(this.options.endpoint, this.options.credentials),
      application_name: `prism-mailbox/${this.ns}`.slice(0, 63),
      max: 10,
      connectionTimeoutMillis: 2_000,
      idleTimeoutMillis: 30_000,
    });
    // An idle client losing its connection emits on the pool; the next query reports it.
    pool.on('error', () => {});
    this.pool = pool;
    return pool;
  }

  private async createSchema(): Promise<void> {
    try {
      await inTransaction(this.openPool(), async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK.toString()]);
        await c.query(SCHEMA);
      });
    } catch (err) {
      if (isDown(err)) {
        throw new BackendDownError(
          'postgres',
          `cannot create the mailbox tables at ${this.target} (${describeCause(err)})`,
          err,
        );
      }
      throw err;
    }
  }

  /** A connection failure as BackendDownError; anything else as it is. */
  private down(what: string, err: unknown): unknown {
    return isDown(err)
      ? new BackendDownError('postgres', `${what} at ${this.target} (${describeCause(err)})`, err)
      : err;
  }

  private async query<R extends pg.QueryResultRow>(
    what: string,
    config: { name?: string; text: string },
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.openPool().query<R>({ ...config, values });
    } catch (err) {
      throw this.down(what, err);
    }
  }

  private async transaction<T>(what: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    try {
      return await inTransaction(this.openPool(), work);
    } catch (err) {
      throw this.down(what, err);
    }
  }

  // -- MailboxDialect ---------------------------------------------------------------------------

  async all<R>(statement: Statement): Promise<R[]> {
    const text = numbered(statement.text);
    // Named, so each connection plans a query shape once rather than on every call.
    const name = `prism_mb_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    const result = await this.query<R & pg.QueryResultRow>(
      'mailbox query failed',
      { name, text },
      statement.values,
    );
    return result.rows;
  }

  insert(
    box: string,
    records: readonly MailboxRecord[],
    indexed: ReadonlySet<string>,
  ): Promise<Array<number | undefined>> {
    const one = async (client: pg.PoolClient | pg.Pool, r: MailboxRecord) => {
      const pairs = indexedPairs(r, indexed);
      const result = await client.query<{ seq: string }>({
        ...INSERT,
        values: [
          box,
          r.messageId,
          r.topic,
          r.publishedAtMs,
          r.storedAtMs,
          r.correlationId,
          r.subject,
          r.tenant,
          JSON.stringify(r.headers),
          Buffer.from(r.meta.buffer, r.meta.byteOffset, r.meta.byteLength),
          Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength),
          r.payloadSize,
          r.payloadOmitted ? 1 : 0,
          pairs.map(([name]) => name),
          pairs.map(([, value]) => value),
        ],
      });
      const seq = result.rows[0]?.seq;
      return seq === undefined ? undefined : Number(seq);
    };
    if (records.length === 1) {
      // One statement is atomic on its own: no BEGIN and COMMIT round trips.
      return one(this.openPool(), records[0]!).then(
        (seq) => [seq],
        (err: unknown) => {
          throw this.down('mailbox insert failed', err);
        },
      );
    }
    return this.transaction('mailbox insert failed', async (c) => {
      const seqs: Array<number | undefined> = [];
      for (const r of records) seqs.push(await one(c, r));
      return seqs;
    });
  }

  deleteSeqs(box: string, seqs: readonly number[]): Promise<number> {
    return this.transaction('mailbox delete failed', async (c) => {
      await c.query('DELETE FROM prism_mailbox_header WHERE seq = ANY($1::bigint[])', [seqs]);
      const result = await c.query('DELETE FROM prism_mailbox WHERE box = $1 AND seq = ANY($2::bigint[])', [
        box,
        seqs,
      ]);
      return result.rowCount ?? 0;
    });
  }
}
