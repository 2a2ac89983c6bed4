/**
 * sqlite mailbox (capability `mailbox`): `<dataDir>/mailbox.sqlite` (file 0600 in a 0700
 * directory, WAL), or an in-memory database without a dataDir. A file of its own, so mailbox
 * ingest never waits for the keyvalue file's write lock. Tables and queries: ../mailbox-sql.ts.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BackendDownError } from '../interfaces.js';
import type { Capability, Driver, MailboxCapability, MailboxRecord, MailboxStore } from '../interfaces.js';
import { checkNamespace, describeCause } from '../kv-common.js';
import { indexedPairs, SqlMailbox, type MailboxDialect, type Statement } from '../mailbox-sql.js';
import { openPrivateFile } from './keyvalue.js';

export const MAILBOX_FILE_NAME = 'mailbox.sqlite';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS prism_mailbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    box             TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    topic           TEXT NOT NULL,
    published_at_ms INTEGER NOT NULL,
    stored_at_ms    INTEGER NOT NULL,
    correlation_id  TEXT NOT NULL,
    subject         TEXT NOT NULL,
    tenant          TEXT NOT NULL,
    headers         TEXT NOT NULL,
    meta            BLOB NOT NULL,
    payload         BLOB NOT NULL,
    payload_size    INTEGER NOT NULL,
    payload_omitted INTEGER NOT NULL,
    UNIQUE (box, message_id)
  );
  CREATE INDEX IF NOT EXISTS prism_mailbox_time ON prism_mailbox (box, published_at_ms, seq);
  CREATE INDEX IF NOT EXISTS prism_mailbox_correlation ON prism_mailbox (box, correlation_id, published_at_ms, seq);
  CREATE INDEX IF NOT EXISTS prism_mailbox_subject ON prism_mailbox (box, subject, published_at_ms, seq);
  CREATE INDEX IF NOT EXISTS prism_mailbox_tenant ON prism_mailbox (box, tenant, published_at_ms, seq);
  CREATE TABLE IF NOT EXISTS prism_mailbox_header (
    box             TEXT NOT NULL,
    name            TEXT NOT NULL,
    value           TEXT NOT NULL,
    published_at_ms INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (box, name, value, published_at_ms, seq)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS prism_mailbox_header_seq ON prism_mailbox_header (seq);
`;

const INSERT = `INSERT INTO prism_mailbox (box, message_id, topic, published_at_ms, stored_at_ms, correlation_id,
    subject, tenant, headers, meta, payload, payload_size, payload_omitted)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (box, message_id) DO NOTHING RETURNING seq`;
const INSERT_HEADER =
  'INSERT INTO prism_mailbox_header (box, name, value, published_at_ms, seq) VALUES (?, ?, ?, ?, ?)';

/** SQLite result codes that mean the storage, not the request, failed. */
const STORAGE_FAILURES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|CORRUPT|NOTADB|PROTOCOL|NOMEM)/;

export interface SqliteMailboxOptions {
  namespace: string;
  dataDir?: string;
  busyTimeoutMs?: number;
}

export type SqliteMailboxDriver = Driver & MailboxCapability;

export function createSqliteMailbox(options: SqliteMailboxOptions): SqliteMailboxDriver {
  return new SqliteMailbox({ ...options, namespace: checkNamespace(options.namespace) });
}

class SqliteMailbox implements SqliteMailboxDriver, MailboxDialect {
  readonly backend = 'sqlite';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['mailbox']);
  private db: Database.Database | undefined;
  private closed = true;

  constructor(private readonly options: SqliteMailboxOptions) {}

  private get where(): string {
    return this.options.dataDir === undefined
      ? 'an in-memory database'
      : join(this.options.dataDir, MAILBOX_FILE_NAME);
  }

  /** The file opens with the first mailbox, so a keyvalue-only sqlite slot never creates it. */
  async connect(): Promise<void> {
    this.closed = false;
  }

  private open(): Database.Database {
    if (this.db !== undefined) return this.db;
    if (this.closed) throw new BackendDownError('sqlite', `${this.where} is closed`);
    let db: Database.Database | undefined;
    try {
      const file =
        this.options.dataDir === undefined
          ? ':memory:'
          : openPrivateFile(this.options.dataDir, MAILBOX_FILE_NAME);
      db = new Database(file, { timeout: this.options.busyTimeoutMs ?? 5_000 });
      if (file !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      // A mailbox is read at random (a page of rows found through an index): map the file and
      // cache more pages than the 2 MiB default, so a query costs memory reads, not syscalls.
      if (file !== ':memory:') db.pragma('mmap_size = 268435456');
      db.pragma('cache_size = -32768');
      db.exec(SCHEMA);
    } catch (err) {
      db?.close();
      throw new BackendDownError('sqlite', `cannot open ${this.where} (${describeCause(err)})`, err);
    }
    this.db = db;
    return db;
  }

  async health(): Promise<void> {
    if (this.db !== undefined) this.run((db) => db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.prepared.clear();
    const db = this.db;
    this.db = undefined;
    // better-sqlite3 is synchronous: no statement is in flight while this runs.
    db?.close();
  }

  async openMailbox(name: string, options: { indexedHeaders: readonly string[] }): Promise<MailboxStore> {
    this.open();
    return new SqlMailbox(`${this.options.namespace}/${name}`, options.indexedHeaders, this);
  }

  private run<T>(fn: (db: Database.Database) => T): T {
    const db = this.db;
    if (db === undefined)
      throw new BackendDownError('sqlite', `${this.where} is not open (call connect() first)`);
    try {
      return fn(db);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && STORAGE_FAILURES.test(code)) {
        throw new BackendDownError('sqlite', `${this.where}: ${describeCause(err)}`, err);
      }
      throw err;
    }
  }

  // -- MailboxDialect ---------------------------------------------------------------------------

  /** Prepared statements by SQL text: queries repeat a few shapes, and preparing costs more than running. */
  private readonly prepared = new Map<string, Database.Statement>();

  private statement(db: Database.Database, text: string): Database.Statement {
    let statement = this.prepared.get(text);
    if (statement === undefined) {
      statement = db.prepare(text);
      if (this.prepared.size >= 256) this.prepared.clear();
      this.prepared.set(text, statement);
    }
    return statement;
  }

  async all<R>(statement: Statement): Promise<R[]> {
    return this.run((db) => this.statement(db, statement.text).all(...statement.values) as R[]);
  }

  async insert(
    box: string,
    records: readonly MailboxRecord[],
    indexed: ReadonlySet<string>,
  ): Promise<Array<number | undefined>> {
    return this.run((db) => {
      const insert = this.statement(db, INSERT).pluck();
      const header = this.statement(db, INSERT_HEADER);
      return db.transaction(() =>
        records.map((r) => {
          const seq = insert.get(
            box,
            r.messageId,
            r.topic,
            r.publishedAtMs,
            r.storedAtMs,
            r.correlationId,
            r.subject,
            r.tenant,
            JSON.stringify(r.headers),
            Buffer.from(r.meta),
            Buffer.from(r.payload),
            r.payloadSize,
            r.payloadOmitted ? 1 : 0,
          ) as number | undefined;
          if (seq === undefined) return undefined;
          for (const [name, value] of indexedPairs(r, indexed))
            header.run(box, name, value, r.publishedAtMs, seq);
          return seq;
        }),
      )();
    });
  }

  async deleteSeqs(box: string, seqs: readonly number[]): Promise<number> {
    return this.run((db) =>
      db.transaction(() => {
        const list = seqs.map(() => '?').join(', ');
        db.prepare(`DELETE FROM prism_mailbox_header WHERE seq IN (${list})`).run(...seqs);
        return db.prepare(`DELETE FROM prism_mailbox WHERE box = ? AND seq IN (${list})`).run(box, ...seqs)
          .changes;
      })(),
    );
  }
}
