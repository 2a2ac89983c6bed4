import type { Envelope, SessionContext, TraceContext } from '../gen/prism/data/v1/envelope_pb.js';
import type { CredentialResolver } from './slots.js';

/**
 * What every pattern runner offers (DESIGN.md §6). Runners bind drivers to slots and implement a
 * pattern's API over them; the gRPC layer (src/runners/<pattern>/service.ts) and the proxy call
 * these interfaces. Failures are PrismErrors: E_INVALID_ARGUMENT (bad key, value too large),
 * E_BACKEND_DOWN (UNAVAILABLE), E_CAPABILITY_MISSING (refused at start).
 */
export interface Runner {
  readonly namespace: string;
  readonly pattern: string;
  readonly type: string;
  /** Connects every bound slot; refuses a slot whose backend lacks a needed capability. */
  start(): Promise<void>;
  /** Flushes pending work, waits for in-flight calls, closes every driver. */
  stop(): Promise<void>;
  /** Throws when a slot's backend does not answer. */
  health(): Promise<void>;
}

/** The caller's identity as the runner sees it (from the verified token, or anonymous). */
export interface CallerSession {
  subject: string;
  tenant: string;
  roles: string[];
  /** When the caller's token expires, seconds since the epoch. */
  expiresAt?: number;
}

/**
 * One caller's backend session (per-request model, DESIGN.md §7): credentials leased for this
 * caller alone, and hooks that release what a runner opened with them before the leases go.
 */
export interface BackendSession {
  /** Unique per session; not derived from the token. */
  readonly id: string;
  /** Leases credentials for a slot's reference, for this session only. */
  readonly credentials: CredentialResolver;
  /** Runs `hook` when the session closes, before its leases and token are revoked. */
  onClose(hook: () => Promise<void>): void;
}

/** A runner whose calls can run on a caller's own backend connection. */
export interface PerCallerRunner<R> {
  /** True when some slot connects per caller, so calls need a BackendSession. */
  readonly needsCallerSession: boolean;
  /** The runner's API, served over the caller's own connection. */
  forCaller(session: BackendSession): Promise<R>;
}

/** The KeyValue calls (prism.data.v1.KeyValue) a runner, or a caller's view of it, serves. */
export interface KeyValueCallsApi {
  set(key: string, value: Uint8Array, ttlSeconds?: number): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  delete(key: string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  batchSet(items: ReadonlyArray<{ key: string; value: Uint8Array; ttlSeconds?: number }>): Promise<void>;
  batchGet(keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
  batchDelete(keys: readonly string[]): Promise<boolean[]>;
  scan(prefix: string, limit?: number, cursor?: string): Promise<{ keys: string[]; cursor?: string }>;
  expire(key: string, ttlSeconds: number): Promise<boolean>;
  /** Milliseconds; -1 no expiry, -2 missing. */
  ttl(key: string): Promise<number>;
  persist(key: string): Promise<boolean>;
}

export interface KeyValueRunnerApi extends Runner, KeyValueCallsApi {}

export interface PublishInput {
  topic?: string;
  payload: Uint8Array;
  contentType?: string;
  correlationId?: string;
  headers?: Record<string, string>;
  messageId?: string;
  trace?: TraceContext;
}

/**
 * A PublishUpload's message: as PublishInput, with the payload's declared size, the SHA-256 the
 * caller announced (if any) and its chunks (read once, in order) instead of the payload.
 */
export interface PublishUploadInput extends Omit<PublishInput, 'payload'> {
  size: number;
  sha256?: string | undefined;
  chunks: AsyncIterable<Uint8Array>;
  /**
   * The largest payload the upload may be gathered into when no claim check takes it: one whole
   * message has to fit the proxy's --max-message-size to be delivered again.
   */
  maxInlineBytes?: number | undefined;
}

export interface PublishResult {
  messageId: string;
  publishedAtMs: number;
  duplicate: boolean;
}

/** Publishes that reach the backend in the order they were made (src/runners/producer/runner.ts). */
export interface PublishLane {
  tail: Promise<void>;
  /** The failure that ended the lane: later publishes fail with it. */
  failed?: { err: unknown };
  /** Any failure ends the lane (PublishBatch); otherwise only the backend being down does. */
  stopOnAnyError: boolean;
}

export interface ProducerRunnerApi extends Runner {
  /**
   * Resolves once the message is acknowledged by the backend (after retries, and batching). With
   * a lane, after the lane's earlier publishes, in order.
   */
  publish(input: PublishInput, session: CallerSession, lane?: PublishLane): Promise<PublishResult>;
  /** Publishes in batch order, each message after the previous one was acknowledged. */
  publishBatch(inputs: readonly PublishInput[], session: CallerSession): Promise<PublishResult[]>;
  /**
   * Publishes a payload that arrives in chunks (prism.data.v1.Producer/PublishUpload), streaming
   * it into the claim check's store when it can. Absent on runners that only take whole payloads
   * (a runner process): the proxy then gathers the chunks and calls `publish`.
   */
  publishUpload?(input: PublishUploadInput, session: CallerSession): Promise<PublishResult>;
}

export interface ConsumerDelivery {
  envelope: Envelope;
  /** Marks the message done; it will not be delivered again to this group. */
  ack(): Promise<void>;
  /** Processing failed: redelivered, or dead-lettered with `reason` after max_retries. */
  nack(reason: string): Promise<void>;
}

export interface ConsumerSubscription {
  close(): Promise<void>;
}

export interface ConsumerRunnerApi extends Runner {
  subscribe(
    /** `prefetch`: the stream's credit (max_in_flight), so the backend is not read further ahead. */
    options: { topic?: string; group?: string; prefetch?: number },
    onDelivery: (delivery: ConsumerDelivery) => void | Promise<void>,
  ): Promise<ConsumerSubscription>;
}

export interface SessionRecord {
  id: string;
  subject: string;
  createdAtMs: number;
  /** Absolute end of life (session_ttl). */
  expiresAtMs: number;
  data: Record<string, string>;
}

export interface SessionManagerRunnerApi extends Runner {
  create(subject: string, data?: Record<string, string>): Promise<SessionRecord>;
  /** Returns the session and extends its idle timeout; undefined when expired or closed. */
  touch(id: string): Promise<SessionRecord | undefined>;
  get(id: string): Promise<SessionRecord | undefined>;
  close(id: string): Promise<boolean>;
}

export type { Envelope, SessionContext, TraceContext };

/**
 * One caller session as shared by every worker and proxy of a namespace (DESIGN.md §7): who, which
 * Vault token (by accessor only) and leases, and for how long. `sealed` holds the Vault token and
 * the leased credentials encrypted with a key derived from the caller's own token
 * (src/auth/session-seal.ts); nothing else here is secret.
 */
export interface StoredCallerSession {
  /** Random, unique per session. */
  id: string;
  /** Hash of Vault scope and caller token (src/auth/session-cache.ts sessionKey): finds the session by token. */
  key: string;
  namespace: string;
  subject: string;
  /** The process that opened the session, renews its leases and closes it. */
  owner: string;
  /** Vault address the session logged in to. */
  vault: string;
  /** Accessor of the session's Vault token (revokes the token without knowing it). */
  accessor: string;
  /** Every lease taken with the session's token; `seconds` is its duration when leased. */
  leases: Array<{ id: string; role: string; seconds: number }>;
  createdAtMs: number;
  lastUsedMs: number;
  expiresAtMs: number;
  idleMs: number;
  /** An operator asked to revoke it; its owner does at its next sweep. */
  revokeRequested?: boolean;
  sealed: string;
}

/** Where caller sessions live: the store slot of the namespace's session-manager pattern. */
export interface CallerSessionStore {
  readonly namespace: string;
  /** The pattern's session_ttl and idle_timeout: a caller session lives no longer, idles no longer. */
  callerLimits(): { ttlMs: number; idleMs: number };
  saveCaller(record: StoredCallerSession): Promise<void>;
  /** The session opened for a token (by its key), if any. */
  findCaller(key: string): Promise<StoredCallerSession | undefined>;
  getCaller(id: string): Promise<StoredCallerSession | undefined>;
  listCallers(): Promise<StoredCallerSession[]>;
  deleteCaller(record: StoredCallerSession): Promise<void>;
  /** Marks `owner` alive for `ttlMs`. */
  beat(owner: string, ttlMs: number): Promise<void>;
  ownerAlive(owner: string): Promise<boolean>;
}

/** What operators do with a namespace's caller sessions (prism.data.v1.CallerSessions). */
export interface CallerSessionAdmin {
  list(store: CallerSessionStore): Promise<StoredCallerSession[]>;
  /** Revokes the session's leases and token, wherever it is held; the number of leases revoked. */
  revoke(store: CallerSessionStore, id: string): Promise<number>;
}
