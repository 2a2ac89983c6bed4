/**
 * The mailbox store (capability `mailbox`) for the SQL backends, SQLite and PostgreSQL: one SQL
 * text for both, and the checks, cursors and pruning every backend shares. A dialect supplies how
 * statements run and how a batch is inserted or deleted atomically.
 *
 * Two tables hold every mailbox of a database, keyed by `box` (`<namespace>/<mailbox name>`):
 *   prism_mailbox         one row per message; `seq` grows with every insert; unique
 *                         (box, message_id); indexes on (box, published_at_ms, seq) and on
 *                         correlation id, subject and tenant each followed by (published_at_ms, seq)
 *   prism_mailbox_header  one row per indexed header of a message, primary key
 *                         (box, name, value, published_at_ms, seq), plus an index on seq
 * A query with header conditions is driven by the header table's primary key (one header
 * equality plus the time range is an index range in published order); without them by the time
 * index. Pages continue after the last row's (published_at_ms, seq) (keyset pagination), so a page
 * costs the same wherever it is.
 */
import { createHash } from 'node:crypto';
import { PrismError } from '../errors.js';
import type {
  MailboxFilter,
  MailboxOrder,
  MailboxPage,
  MailboxRecord,
  MailboxStore,
  StoredMailboxRecord,
} from './interfaces.js';

export const MAX_QUERY_LIMIT = 1000;
/** Rows deleted per statement by delete and prune, so a big delete never holds the store long. */
export const DELETE_BATCH = 2000;

/** A row of prism_mailbox as both drivers read it (PostgreSQL bigints arrive as strings). */
export interface MailboxRow {
  seq: number | string;
  message_id: string;
  topic: string;
  published_at_ms: number | string;
  stored_at_ms: number | string;
  correlation_id: string;
  subject: string;
  tenant: string;
  headers: string;
  meta: Uint8Array;
  payload: Uint8Array;
  payload_size: number | string;
  payload_omitted: number | boolean;
}

export const ROW_COLUMNS =
  'm.seq, m.message_id, m.topic, m.published_at_ms, m.stored_at_ms, m.correlation_id, m.subject, m.tenant, m.headers, m.meta, m.payload, m.payload_size, m.payload_omitted';

export function fromRow(row: MailboxRow): StoredMailboxRecord {
  return {
    seq: Number(row.seq),
    messageId: row.message_id,
    topic: row.topic,
    publishedAtMs: Number(row.published_at_ms),
    storedAtMs: Number(row.stored_at_ms),
    correlationId: row.correlation_id,
    subject: row.subject,
    tenant: row.tenant,
    headers: JSON.parse(row.headers) as Record<string, string>,
    meta: new Uint8Array(row.meta.buffer, row.meta.byteOffset, row.meta.byteLength),
    payload: new Uint8Array(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength),
    payloadSize: Number(row.payload_size),
    payloadOmitted: row.payload_omitted === true || row.payload_omitted === 1,
  };
}

/** The indexed headers of a record, as header-table rows. */
export function indexedPairs(
  record: MailboxRecord,
  indexed: ReadonlySet<string>,
): Array<[name: string, value: string]> {
  return Object.entries(record.headers).filter(([name]) => indexed.has(name));
}

function invalid(message: string, hint?: string): PrismError {
  return new PrismError('E_INVALID_ARGUMENT', message, hint === undefined ? undefined : { hint });
}

/** Refuses conditions the store cannot answer: a header that is not indexed, an empty range. */
export function checkFilter(filter: MailboxFilter, indexed: ReadonlySet<string>): void {
  for (const name of Object.keys(filter.headers ?? {})) {
    if (!indexed.has(name)) {
      throw invalid(
        `header ${JSON.stringify(name)} is not indexed in this mailbox`,
        indexed.size === 0
          ? "add it to the pattern's indexed_headers setting; this mailbox indexes no headers"
          : `filter on one of: ${[...indexed].join(', ')}, or add it to indexed_headers`,
      );
    }
  }
  if (filter.sinceMs !== undefined && filter.untilMs !== undefined && filter.untilMs <= filter.sinceMs) {
    throw invalid(`until (${filter.untilMs}) must be after since (${filter.sinceMs})`);
  }
}

/** True when the filter has at least one condition (a Delete refuses one without). */
export function hasCondition(filter: MailboxFilter): boolean {
  return (
    filter.sinceMs !== undefined ||
    filter.untilMs !== undefined ||
    !!filter.topic ||
    (filter.messageIds?.length ?? 0) > 0 ||
    !!filter.correlationId ||
    !!filter.subject ||
    !!filter.tenant ||
    Object.keys(filter.headers ?? {}).length > 0
  );
}

interface Cursor {
  /** Order the page was read in. */
  o: MailboxOrder;
  /** Fingerprint of the filter. */
  f: string;
  /** published_at_ms and seq of the last row. */
  t: number;
  s: number;
}

function fingerprint(filter: MailboxFilter): string {
  const canonical = JSON.stringify([
    filter.sinceMs ?? null,
    filter.untilMs ?? null,
    filter.topic ?? '',
    [...(filter.messageIds ?? [])].sort(),
    filter.correlationId ?? '',
    filter.subject ?? '',
    filter.tenant ?? '',
    Object.entries(filter.headers ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 12);
}

export function encodeCursor(order: MailboxOrder, filter: MailboxFilter, last: StoredMailboxRecord): string {
  const cursor: Cursor = { o: order, f: fingerprint(filter), t: last.publishedAtMs, s: last.seq };
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

export function decodeCursor(
  text: string,
  order: MailboxOrder,
  filter: MailboxFilter,
): { t: number; s: number } {
  let cursor: Partial<Cursor>;
  try {
    cursor = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Cursor>;
  } catch {
    throw invalid('malformed page token', 'pass next_page_token from the previous page unchanged');
  }
  if (typeof cursor.t !== 'number' || typeof cursor.s !== 'number' || typeof cursor.f !== 'string') {
    throw invalid('malformed page token', 'pass next_page_token from the previous page unchanged');
  }
  if (cursor.o !== order || cursor.f !== fingerprint(filter)) {
    throw invalid(
      'the page token belongs to another filter or order',
      'repeat the query with the filter and order of the first page',
    );
  }
  return { t: cursor.t, s: cursor.s };
}

export interface Statement {
  /** `?` placeholders; the PostgreSQL dialect numbers them. */
  text: string;
  values: unknown[];
}

/**
 * SELECT of the rows (or only the seqs) that match a filter, in `order`, after `after`. With
 * header conditions the first header drives the scan and the others are EXISTS lookups.
 */
export function selectStatement(
  box: string,
  filter: MailboxFilter,
  options: { columns: 'rows' | 'seq'; order: MailboxOrder; limit: number; after?: { t: number; s: number } },
): Statement {
  const values: unknown[] = [];
  const p = (value: unknown): string => {
    values.push(value);
    return '?';
  };
  const headers = Object.entries(filter.headers ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const where: string[] = [];
  let from: string;
  let t: string;
  let k: string;
  if (headers.length > 0) {
    const [[name, value], ...rest] = headers as [[string, string], ...Array<[string, string]>];
    from = 'prism_mailbox_header h JOIN prism_mailbox m ON m.seq = h.seq';
    t = 'h.published_at_ms';
    k = 'h.seq';
    where.push(`h.box = ${p(box)}`, `h.name = ${p(name)}`, `h.value = ${p(value)}`);
    rest.forEach(([n, v], i) => {
      where.push(
        `EXISTS (SELECT 1 FROM prism_mailbox_header h${i} WHERE h${i}.seq = m.seq AND h${i}.box = ${p(box)} AND h${i}.name = ${p(n)} AND h${i}.value = ${p(v)})`,
      );
    });
  } else {
    from = 'prism_mailbox m';
    t = 'm.published_at_ms';
    k = 'm.seq';
  }
  where.push(`m.box = ${p(box)}`);
  if (filter.sinceMs !== undefined) where.push(`${t} >= ${p(filter.sinceMs)}`);
  if (filter.untilMs !== undefined) where.push(`${t} < ${p(filter.untilMs)}`);
  if (filter.topic) where.push(`m.topic = ${p(filter.topic)}`);
  if (filter.messageIds && filter.messageIds.length > 0) {
    where.push(`m.message_id IN (${filter.messageIds.map((id) => p(id)).join(', ')})`);
  }
  if (filter.correlationId) where.push(`m.correlation_id = ${p(filter.correlationId)}`);
  if (filter.subject) where.push(`m.subject = ${p(filter.subject)}`);
  if (filter.tenant) where.push(`m.tenant = ${p(filter.tenant)}`);
  const newest = options.order === 'newest';
  if (options.after) {
    const cmp = newest ? '<' : '>';
    where.push(
      `(${t} ${cmp} ${p(options.after.t)} OR (${t} = ${p(options.after.t)} AND ${k} ${cmp} ${p(options.after.s)}))`,
    );
  }
  const dir = newest ? 'DESC' : 'ASC';
  const columns = options.columns === 'rows' ? ROW_COLUMNS : `${k} AS seq`;
  return {
    text: `SELECT ${columns} FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${t} ${dir}, ${k} ${dir} LIMIT ${p(options.limit)}`,
    values,
  };
}

/** What a SQL backend provides to the shared mailbox logic. */
export interface MailboxDialect {
  all<R>(statement: Statement): Promise<R[]>;
  /** Inserts the records and their indexed headers in one transaction. */
  insert(
    box: string,
    records: readonly MailboxRecord[],
    indexed: ReadonlySet<string>,
  ): Promise<Array<number | undefined>>;
  /** Deletes the rows with these seqs (and their header rows) in one transaction. */
  deleteSeqs(box: string, seqs: readonly number[]): Promise<number>;
}

/** Lets other work run between delete batches (SQLite runs in this thread). */
const yieldToOthers = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class SqlMailbox implements MailboxStore {
  private readonly indexed: ReadonlySet<string>;

  constructor(
    private readonly box: string,
    indexedHeaders: readonly string[],
    private readonly dialect: MailboxDialect,
  ) {
    this.indexed = new Set(indexedHeaders);
  }

  insert(records: readonly MailboxRecord[]): Promise<Array<number | undefined>> {
    for (const record of records) {
      if (record.messageId === '') throw invalid('a mailbox record needs a message id');
    }
    if (records.length === 0) return Promise.resolve([]);
    return this.dialect.insert(this.box, records, this.indexed);
  }

  async query(
    filter: MailboxFilter,
    page: { order: MailboxOrder; limit: number; cursor?: string },
  ): Promise<MailboxPage> {
    checkFilter(filter, this.indexed);
    if (!Number.isInteger(page.limit) || page.limit < 1 || page.limit > MAX_QUERY_LIMIT) {
      throw invalid(`limit must be 1 to ${MAX_QUERY_LIMIT}, got ${page.limit}`);
    }
    const after = page.cursor ? decodeCursor(page.cursor, page.order, filter) : undefined;
    // One row more than the page tells whether another page follows.
    const rows = await this.dialect.all<MailboxRow>(
      selectStatement(this.box, filter, {
        columns: 'rows',
        order: page.order,
        limit: page.limit + 1,
        ...(after ? { after } : {}),
      }),
    );
    const records = rows.slice(0, page.limit).map(fromRow);
    if (rows.length <= page.limit) return { records };
    return { records, cursor: encodeCursor(page.order, filter, records[records.length - 1]!) };
  }

  async delete(filter: MailboxFilter): Promise<number> {
    checkFilter(filter, this.indexed);
    if (!hasCondition(filter)) {
      throw invalid('a delete needs message ids or a filter with at least one condition');
    }
    return this.deleteMatching(filter);
  }

  async prune(limits: { beforeMs?: number; keepNewest?: number }): Promise<number> {
    let deleted = 0;
    if (limits.beforeMs !== undefined && Number.isFinite(limits.beforeMs)) {
      deleted += await this.deleteMatching({ untilMs: limits.beforeMs });
    }
    if (limits.keepNewest !== undefined && Number.isFinite(limits.keepNewest)) {
      const [boundary] = await this.dialect.all<{ published_at_ms: number | string; seq: number | string }>({
        text: `SELECT published_at_ms, seq FROM prism_mailbox WHERE box = ? ORDER BY published_at_ms DESC, seq DESC LIMIT 1 OFFSET ?`,
        values: [this.box, Math.max(0, Math.floor(limits.keepNewest))],
      });
      if (boundary) {
        // Everything at or before the first row beyond the newest `keepNewest` goes.
        const t = Number(boundary.published_at_ms);
        const s = Number(boundary.seq);
        deleted += await this.deleteMatching({}, { t, s: s + 1 });
      }
    }
    return deleted;
  }

  async count(): Promise<number> {
    const [row] = await this.dialect.all<{ n: number | string }>({
      text: 'SELECT count(*) AS n FROM prism_mailbox WHERE box = ?',
      values: [this.box],
    });
    return Number(row?.n ?? 0);
  }

  /**
   * Deletes what matches, in batches of DELETE_BATCH. With `before`, only rows older than (t, s):
   * published before t, or at t and stored before seq s.
   */
  private async deleteMatching(filter: MailboxFilter, before?: { t: number; s: number }): Promise<number> {
    let deleted = 0;
    for (;;) {
      const rows = await this.dialect.all<{ seq: number | string }>(
        selectStatement(this.box, filter, {
          columns: 'seq',
          // Newest first after (t, s) is exactly "older than (t, s)"; otherwise oldest first.
          order: before ? 'newest' : 'oldest',
          limit: DELETE_BATCH,
          ...(before ? { after: before } : {}),
        }),
      );
      if (rows.length === 0) return deleted;
      deleted += await this.dialect.deleteSeqs(
        this.box,
        rows.map((r) => Number(r.seq)),
      );
      if (rows.length < DELETE_BATCH) return deleted;
      await yieldToOthers();
    }
  }
}
