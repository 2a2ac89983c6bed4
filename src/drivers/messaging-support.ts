/**
 * Small helpers shared by the messaging drivers (memstore, redis, postgres, nats, kafka): a
 * deadline so no call hangs on a dead backend, an in-order dispatcher for handlers, and the
 * delivery bookkeeping every queue needs. Nothing here knows a backend.
 */
import { BackendDownError } from './interfaces.js';

/** Default upper bound for one call to a backend before it is reported as down. */
export const DEFAULT_OPERATION_TIMEOUT_MS = 5_000;

/** Default visibility timeout for queue deliveries (`Queue.consume` options.ackTimeoutMs). */
export const DEFAULT_ACK_TIMEOUT_MS = 30_000;

/** Header whose value, when present, de-duplicates an enqueue (NATS `msgID`). */
export const MESSAGE_ID_HEADER = 'prism-message-id';

/** Header whose value, when present, becomes the Kafka message key (ordering per key). */
export const PARTITION_KEY_HEADER = 'prism-partition-key';

/**
 * Resolves or rejects like `promise`, but rejects with BackendDownError after `ms` milliseconds.
 * The underlying operation is not cancelled; its late outcome is ignored.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, backend: string, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BackendDownError(backend, `${what} timed out after ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Runs handlers one after another in arrival order, so an async handler never sees message n+1
 * before it finished message n. `idle()` resolves when nothing runs or waits.
 */
export class SerialDispatcher<T> {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;
  private closed = false;

  constructor(
    private readonly handler: (item: T) => void | Promise<void>,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  get queued(): number {
    return this.pending;
  }

  push(item: T): void {
    if (this.closed) return;
    this.pending++;
    this.tail = this.tail
      .then(async () => {
        if (this.closed) return;
        try {
          await this.handler(item);
        } catch (err) {
          this.onError(err);
        }
      })
      .finally(() => {
        this.pending--;
      });
  }

  /** Stops dispatching what is still queued; resolves when the running handler returned. */
  close(): Promise<void> {
    this.closed = true;
    return this.tail;
  }
}

/** A promise that can be resolved from outside, used to wait for "subscribed" or "stopped". */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Copies headers into a fresh plain object, checking that keys and values are strings. */
export function copyHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (typeof v !== 'string') throw new TypeError(`header ${k} must be a string`);
    out[k] = v;
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `flush` once for every item added in the same turn of the event loop (at most `max` at
 * once), so settlements issued together (one ConsumeAck for many deliveries) reach the backend
 * as one request. Each `add` settles with its batch.
 */
export class Coalescer<T> {
  private pending: Array<{ item: T; resolve: () => void; reject: (err: unknown) => void }> = [];
  private scheduled = false;

  constructor(
    private readonly flush: (items: T[]) => Promise<void>,
    private readonly max = 1000,
  ) {}

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.max) this.run();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.run());
      }
    });
  }

  private run(): void {
    this.scheduled = false;
    const batch = this.pending.splice(0);
    if (batch.length === 0) return;
    this.flush(batch.map((p) => p.item)).then(
      () => batch.forEach((p) => p.resolve()),
      (err: unknown) => batch.forEach((p) => p.reject(err)),
    );
  }
}
