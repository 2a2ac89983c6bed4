import { PrismError } from '../errors.js';
import type { Capability } from '../config/registry.js';

/**
 * The small interfaces every driver implements (DESIGN.md §4, STYLE.md: one conformance suite for
 * every driver). A driver declares its capabilities; the conformance suite tests what is declared
 * and asserts that what is not declared is absent. Drivers never import runners.
 */

export type { Capability };

/** Lifecycle shared by every driver. */
export interface Driver {
  /** Backend name from the registry, e.g. "redis". */
  readonly backend: string;
  readonly capabilities: ReadonlySet<Capability>;
  /** Connects; throws BackendDownError when the backend does not answer. */
  connect(): Promise<void>;
  /** Throws BackendDownError when the backend does not answer right now. */
  health(): Promise<void>;
  /** Closes every handle the driver opened; waits for in-flight operations. */
  close(): Promise<void>;
}

/** Capability `keyvalue`. Values are bytes; a missing key is `undefined`, never an error. */
export interface KeyValueStore {
  /** `ttlMs` 0 or absent means no expiry, and clears an earlier TTL. */
  set(key: string, value: Uint8Array, ttlMs?: number): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  /** True when the key existed. Deleting a missing key is not an error. */
  delete(key: string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /** Optional: the values of many keys in key order, in one backend request (Redis MGET). */
  getMany?(keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
  /** Optional: sets many keys, in order, in one backend request (Redis: one MULTI). */
  setMany?(items: ReadonlyArray<{ key: string; value: Uint8Array; ttlMs?: number }>): Promise<void>;
}

/** Capability `ttl`. */
export interface TtlStore {
  /** False when the key does not exist. */
  expire(key: string, ttlMs: number): Promise<boolean>;
  /** Remaining milliseconds; -1 when the key has no expiry, -2 when it does not exist. */
  ttl(key: string): Promise<number>;
  /** Removes the expiry; false when the key does not exist. */
  persist(key: string): Promise<boolean>;
}

export interface ScanPage {
  keys: string[];
  /** Opaque; absent on the last page. */
  cursor?: string;
}

/** Capability `scan`: keys with a prefix, in pages of at most `limit`. */
export interface ScanStore {
  scan(prefix: string, options: { limit: number; cursor?: string }): Promise<ScanPage>;
}

/** A message as a backend carries it: payload bytes plus string headers in the backend's native headers. */
export interface Message {
  topic: string;
  payload: Uint8Array;
  headers: Record<string, string>;
}

export interface Subscription {
  /** Stops delivery; resolves when no handler runs any more. */
  close(): Promise<void>;
}

/** Capability `pubsub`: every live subscriber of a topic receives every message published after it subscribed. */
export interface PubSub {
  publish(message: Message): Promise<void>;
  /**
   * Publishes `messages` in order as one backend request (or one pipelined window); resolves when
   * every one was sent. An empty list is a no-op. On failure any prefix may have been sent.
   */
  publishMany(messages: readonly Message[]): Promise<void>;
  subscribe(topic: string, handler: (message: Message) => void | Promise<void>): Promise<Subscription>;
}

export interface Delivery extends Message {
  /** 1 on first delivery, then 2, 3, ... on redeliveries. */
  attempt: number;
  ack(): Promise<void>;
  /** Asks for redelivery (after the backend's redelivery delay). */
  nack(): Promise<void>;
}

/**
 * Capability `queue`: durable, at-least-once delivery to consumer groups. Within a group each
 * message goes to one consumer; unacknowledged messages are redelivered after `ackTimeoutMs`.
 */
export interface Queue {
  enqueue(message: Message): Promise<void>;
  /**
   * Enqueues `messages` in order as one backend request (or one window of publishes in flight
   * together); resolves when the backend acknowledged every one. An empty list is a no-op. On
   * failure the backend may hold some of them: a driver whose backend de-duplicates by message id
   * (NATS) or writes the batch atomically (PostgreSQL, Redis MULTI) makes a retry of the whole
   * batch safe.
   */
  enqueueMany(messages: readonly Message[]): Promise<void>;
  consume(
    topic: string,
    group: string,
    handler: (delivery: Delivery) => void | Promise<void>,
    options?: ConsumeOptions,
  ): Promise<Subscription>;
}

/** A message as a mailbox stores it (capability `mailbox`). */
export interface MailboxRecord {
  /** Unique within a mailbox: a second insert with the same id is a no-op. */
  messageId: string;
  topic: string;
  publishedAtMs: number;
  storedAtMs: number;
  correlationId: string;
  /** The publisher's session subject and tenant ('' when none). */
  subject: string;
  tenant: string;
  /** Custom headers; the store indexes those named in `indexedHeaders`. */
  headers: Readonly<Record<string, string>>;
  /** The rest of the envelope, opaque to the store, returned as given. */
  meta: Uint8Array;
  /** Bytes, stored untouched (empty when omitted). */
  payload: Uint8Array;
  payloadSize: number;
  payloadOmitted: boolean;
}

/** A stored record; `seq` grows with every insert into the store and orders equal timestamps. */
export interface StoredMailboxRecord extends MailboxRecord {
  seq: number;
}

/** Every condition given must hold. Times are published_at: `sinceMs` inclusive, `untilMs` exclusive. */
export interface MailboxFilter {
  sinceMs?: number;
  untilMs?: number;
  topic?: string;
  /** One or more ids (any of them). */
  messageIds?: readonly string[];
  correlationId?: string;
  subject?: string;
  tenant?: string;
  /** Equality on indexed headers only; any other header is E_INVALID_ARGUMENT. */
  headers?: Readonly<Record<string, string>>;
}

export type MailboxOrder = 'newest' | 'oldest';

export interface MailboxPage {
  records: StoredMailboxRecord[];
  /** Opaque; absent on the last page. */
  cursor?: string;
}

/** One mailbox in a store: its records, indexes and pruning. */
export interface MailboxStore {
  /**
   * Inserts in one transaction; returns per record its `seq`, or undefined when a record with the
   * same message id was already stored (nothing changes then).
   */
  insert(records: readonly MailboxRecord[]): Promise<Array<number | undefined>>;
  /** `limit` 1..1000; follow `cursor`, which is only valid with the same filter and order. */
  query(
    filter: MailboxFilter,
    page: { order: MailboxOrder; limit: number; cursor?: string },
  ): Promise<MailboxPage>;
  /** Deletes what matches (refuses a filter without conditions); returns how many. */
  delete(filter: MailboxFilter): Promise<number>;
  /** Deletes records published before `beforeMs`, and the oldest beyond `keepNewest`; returns how many. */
  prune(limits: { beforeMs?: number; keepNewest?: number }): Promise<number>;
  count(): Promise<number>;
}

/**
 * Capability `mailbox`: named mailboxes of a namespace (one per mailbox pattern), each indexed by
 * published time, message id, correlation id, subject, tenant and the headers named at open.
 */
export interface MailboxCapability {
  openMailbox(name: string, options: { indexedHeaders: readonly string[] }): Promise<MailboxStore>;
}

/** What an object store knows about one object (capability `objects`). */
export interface ObjectInfo {
  key: string;
  /** Bytes stored. */
  size: number;
  /** Lowercase hex SHA-256 of the stored bytes, computed by the driver on put. */
  sha256: string;
  /** Epoch ms from which the object counts as missing (and a sweep deletes it); absent: never. */
  expiresAtMs?: number;
}

export interface PutObjectOptions {
  /** The object expires this many milliseconds after the put; 0 or absent: never. */
  ttlMs?: number;
  /** Expected lowercase hex SHA-256 of `body`: a mismatch stores nothing (E_INVALID_ARGUMENT). */
  sha256?: string;
  /**
   * `sha256` was computed by the caller from these very bytes, which it holds in memory: the store
   * records it without hashing the body a second time (still checking the size). Only for a body
   * the caller hashed itself; a hash that arrived from elsewhere must be checked (leave this off).
   */
  sha256Computed?: boolean;
  /**
   * `putObjectStream` only: the body's length in bytes, when known before it arrives. A store may
   * then write the body in one request as it arrives (S3: one PutObject instead of buffered
   * multipart parts); a body of another length stores nothing (E_INVALID_ARGUMENT).
   */
  size?: number;
}

/** Bytes `offset` .. `offset + length - 1` (to the end when `length` is absent). */
export interface ObjectRange {
  offset: number;
  length?: number;
}

/** An object being read (ObjectStore.readObject). */
export interface ObjectReader {
  /** The object's size in bytes, known before its first chunk. */
  readonly size: number;
  /**
   * Its bytes in order, read once, to the end or stopped early (break, throw), which releases the
   * read; a reader never iterated holds its file or connection.
   */
  readonly chunks: AsyncIterable<Uint8Array>;
  /**
   * Instead of `chunks` (use one or the other), where a driver can: places the bytes straight
   * into `target` (exactly `size` long) as they arrive, calling `onBytes` with each newly filled
   * view in order; rejects as `chunks` would throw. `fillFrom` (objects/common.ts) uses it when
   * it is there and copies the chunks when it is not.
   */
  readInto?(target: Uint8Array, onBytes?: (view: Uint8Array) => void): Promise<void>;
}

/**
 * Capability `objects`: whole objects by key, scoped to the driver's namespace. Keys are 1–512
 * characters of `A-Z a-z 0-9 . _ - /` without empty, `.` or `..` segments. A missing or expired
 * object is `undefined`, never an error; a store that does not answer throws BackendDownError.
 */
export interface ObjectStore {
  /** Stores `body` under `key`, replacing what was there; resolves once it is durable. */
  putObject(key: string, body: Uint8Array, options?: PutObjectOptions): Promise<ObjectInfo>;
  /** The object's bytes, or the range asked for (clamped to the object's end). */
  getObject(key: string, range?: ObjectRange): Promise<Uint8Array | undefined>;
  /**
   * The object's bytes as they arrive, not gathered by the driver: the caller places them where
   * it needs them and checks them on the way. Undefined when the object is missing or expired; a
   * read that fails midway throws from `chunks` (BackendDownError when the store went away).
   */
  readObject(key: string): Promise<ObjectReader | undefined>;
  statObject(key: string): Promise<ObjectInfo | undefined>;
  /** True when the object existed. Deleting a missing object is not an error. */
  deleteObject(key: string): Promise<boolean>;
  /**
   * Stores the bytes `body` yields, in order, under `key`, without holding them all: the driver
   * asks for the next chunk only once it has passed the earlier ones on (S3: one PutObject written
   * as the body arrives when `options.size` announced its length, else a multipart upload with a
   * bounded number of parts in flight). Nothing is visible under `key` before every byte
   * arrived and `options.sha256` (of the whole body) matched; when `body` throws or the store
   * fails, nothing is stored (a partial upload is aborted, or expires with its `ttlMs`). S3 keeps
   * the checksum in the object's metadata only when `options.sha256` announced it.
   */
  putObjectStream(
    key: string,
    body: AsyncIterable<Uint8Array>,
    options?: PutObjectOptions,
  ): Promise<ObjectInfo>;
  /**
   * Moves an object, with its checksum and expiry, to `to` (replacing what was there); false when
   * `from` was missing. S3 copies it server-side, then deletes `from`.
   */
  renameObject(from: string, to: string): Promise<boolean>;
  /**
   * Deletes the expired objects whose keys start with `prefix` (and, on S3, aborts multipart
   * uploads there that were begun over a day ago); returns how many.
   */
  sweepObjects(prefix: string): Promise<number>;
}

export interface ConsumeOptions {
  ackTimeoutMs?: number;
  /**
   * How many messages to fetch from the backend ahead of the handler (the consumer's credit, so a
   * slow consumer does not hold a backlog whose ack timers run); drivers clamp it to 1–256 and
   * default to their own batch.
   */
  prefetch?: number;
}

/** Clamps a consumer's prefetch hint to 1–256, or the driver's default when absent. */
export function prefetchOf(options: ConsumeOptions | undefined, fallback: number): number {
  const wanted = options?.prefetch;
  if (wanted === undefined || !Number.isFinite(wanted) || wanted < 1) return fallback;
  return Math.min(256, Math.floor(wanted));
}

/** A driver with the capability interfaces it declared. */
export type AnyDriver = Driver &
  Partial<KeyValueStore & TtlStore & ScanStore & PubSub & Queue & MailboxCapability & ObjectStore>;

/** The backend did not answer: callers see UNAVAILABLE and may retry. Never carries credentials. */
export class BackendDownError extends PrismError {
  constructor(backend: string, what: string, cause?: unknown) {
    super('E_BACKEND_DOWN', `${backend} is unavailable: ${what}`, {
      cause,
      hint: 'retry; the driver reconnects by itself',
    });
    this.name = 'BackendDownError';
  }
}

/**
 * A message larger than the backend accepts: the proxy answers RESOURCE_EXHAUSTED, and nothing
 * retries it (it is not E_BACKEND_DOWN). The message names the backend, the size and the limit.
 */
export class PayloadTooLargeError extends PrismError {
  constructor(
    readonly backend: string,
    readonly sizeBytes: number,
    /** Undefined when the backend refused the message but its limit could not be read. */
    readonly limitBytes: number | undefined,
    what: string,
    cause?: unknown,
  ) {
    super(
      'E_PAYLOAD_TOO_LARGE',
      `${backend} refused a message of ${sizeBytes} bytes on ${what}: ` +
        (limitBytes === undefined ? 'it is above its limit' : `its limit is ${limitBytes} bytes`),
      {
        cause,
        hint:
          limitBytes === undefined
            ? `send smaller payloads, or raise the ${backend} limit`
            : `send payloads under ${limitBytes} bytes (payload and headers), or raise the ${backend} limit`,
      },
    );
    this.name = 'PayloadTooLargeError';
  }
}

/** Options every driver factory accepts. */
export interface DriverOptions {
  /** Endpoint from the assignment, e.g. redis://localhost:6379. */
  endpoint: string;
  /** Resolved credentials (from Vault or the environment), never a reference. */
  credentials?: { username: string; password: string };
  /** Isolates keys, tables, streams and topics of one namespace from another. */
  namespace: string;
  /** Directory for file-backed drivers (sqlite). */
  dataDir?: string;
  /**
   * The namespace's `needs.retention` in milliseconds (Infinity or absent: keep everything). A
   * queue driver that trims by age (redis) drops messages older than this, acknowledged or not.
   */
  retentionMs?: number;
}
