/**
 * The KeyValue calls with the pattern's rules applied before the backend is asked, so every
 * backend accepts and rejects the same requests. `run` hands each call the store it runs on: the
 * runner's own, or a caller's (per-request sessions).
 *
 * - Keys: non-empty, at most 1 KiB of UTF-8, well-formed UTF-16 (no lone surrogates), no NUL.
 * - Values: at most `max_value_size` bytes (default 1MiB).
 * - TTL in seconds; 0 or absent means `default_ttl` (default 0s: no expiry).
 * - Batches are checked as a whole first, then applied one item after another in request order.
 * - Scan pages hold `limit` keys (default 100, at most 1000).
 */
import type { AnyDriver, KeyValueStore, ScanStore, TtlStore } from '../../drivers/interfaces.js';
import { PrismError } from '../../errors.js';
import type { KeyValueCallsApi } from '../types.js';

export const MAX_KEY_BYTES = 1024;
export const DEFAULT_SCAN_LIMIT = 100;
export const MAX_SCAN_LIMIT = 1000;

export type Store = AnyDriver & KeyValueStore;

/** Runs one call on a store (tracked by the runner). */
export type StoreRun = <T>(operation: (store: Store) => Promise<T>) => Promise<T>;

export interface KeyValueSettings {
  /** Milliseconds; 0 = no expiry. */
  defaultTtlMs: number;
  maxValueSizeBytes: number;
  /** The setting as written, for messages ("1MiB"). */
  maxValueSizeText: string;
}

function invalid(message: string): PrismError {
  return new PrismError('E_INVALID_ARGUMENT', message);
}

/** E_INVALID_ARGUMENT unless `key` is a key every backend stores faithfully. */
export function checkKey(key: string, what = 'key'): void {
  if (typeof key !== 'string' || key === '') throw invalid(`${what} must not be empty`);
  checkKeyText(key, what);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** `String.prototype.isWellFormed` (ES2024, in Node 20), with a fallback the ES2023 typings allow. */
function isWellFormed(text: string): boolean {
  const native = (text as string & { isWellFormed?: () => boolean }).isWellFormed;
  return typeof native === 'function' ? native.call(text) : !LONE_SURROGATE.test(text);
}

function checkKeyText(key: string, what: string): void {
  if (!isWellFormed(key)) throw invalid(`${what} is not well-formed UTF-16 (it contains a lone surrogate)`);
  if (key.includes('\0')) throw invalid(`${what} contains a NUL character`);
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES)
    throw invalid(`${what} is ${bytes} bytes of UTF-8; the limit is ${MAX_KEY_BYTES} bytes`);
}

function checkTtlSeconds(ttlSeconds: number, allowZero: boolean): void {
  if (
    typeof ttlSeconds !== 'number' ||
    !Number.isFinite(ttlSeconds) ||
    ttlSeconds < 0 ||
    (!allowZero && ttlSeconds === 0)
  ) {
    throw invalid(
      `ttl must be a finite number of seconds ${allowZero ? '>= 0' : '> 0'}, got ${String(ttlSeconds)}`,
    );
  }
}

export class KeyValueCalls implements KeyValueCallsApi {
  constructor(
    private readonly label: string,
    private readonly settings: KeyValueSettings,
    private readonly run: StoreRun,
  ) {}

  private capable<K extends 'ttl' | 'scan'>(
    store: Store,
    capability: K,
  ): Store & (K extends 'ttl' ? TtlStore : ScanStore) {
    if (!store.capabilities.has(capability)) {
      throw new PrismError(
        'E_CAPABILITY_MISSING',
        `${this.label}: the ${store.backend} store does not implement ${capability}`,
      );
    }
    return store as Store & (K extends 'ttl' ? TtlStore : ScanStore);
  }

  private checkValue(value: Uint8Array): void {
    if (!(value instanceof Uint8Array)) throw invalid('value must be bytes');
    if (value.byteLength > this.settings.maxValueSizeBytes) {
      throw invalid(
        `value is ${value.byteLength} bytes; the limit is ${this.settings.maxValueSizeText} ` +
          `(${this.settings.maxValueSizeBytes} bytes, setting max_value_size)`,
      );
    }
  }

  /** Milliseconds to hand the driver: the caller's TTL, else default_ttl; 0 = no expiry. */
  private ttlMs(ttlSeconds: number | undefined): number {
    if (ttlSeconds === undefined || ttlSeconds === 0) return this.settings.defaultTtlMs;
    return Math.ceil(ttlSeconds * 1000);
  }

  private checkSet(key: string, value: Uint8Array, ttlSeconds: number | undefined): void {
    checkKey(key);
    this.checkValue(value);
    if (ttlSeconds !== undefined) checkTtlSeconds(ttlSeconds, true);
  }

  set(key: string, value: Uint8Array, ttlSeconds?: number): Promise<void> {
    return this.run(async (store) => {
      this.checkSet(key, value, ttlSeconds);
      await store.set(key, value, this.ttlMs(ttlSeconds));
    });
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.run(async (store) => {
      checkKey(key);
      return store.get(key);
    });
  }

  delete(key: string): Promise<boolean> {
    return this.run(async (store) => {
      checkKey(key);
      return store.delete(key);
    });
  }

  exists(key: string): Promise<boolean> {
    return this.run(async (store) => {
      checkKey(key);
      return store.exists(key);
    });
  }

  batchSet(items: ReadonlyArray<{ key: string; value: Uint8Array; ttlSeconds?: number }>): Promise<void> {
    return this.run(async (store) => {
      checkEach(items, (item) => this.checkSet(item.key, item.value, item.ttlSeconds));
      if (store.setMany)
        return store.setMany(
          items.map((i) => ({ key: i.key, value: i.value, ttlMs: this.ttlMs(i.ttlSeconds) })),
        );
      for (const item of items) await store.set(item.key, item.value, this.ttlMs(item.ttlSeconds));
    });
  }

  batchGet(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    return this.run(async (store) => {
      checkEach(keys, (key) => checkKey(key));
      if (store.getMany) return store.getMany(keys);
      const values: Array<Uint8Array | undefined> = [];
      for (const key of keys) values.push(await store.get(key));
      return values;
    });
  }

  batchDelete(keys: readonly string[]): Promise<boolean[]> {
    return this.run(async (store) => {
      checkEach(keys, (key) => checkKey(key));
      const deleted: boolean[] = [];
      for (const key of keys) deleted.push(await store.delete(key));
      return deleted;
    });
  }

  scan(prefix: string, limit?: number, cursor?: string): Promise<{ keys: string[]; cursor?: string }> {
    return this.run(async (store) => {
      if (typeof prefix !== 'string') throw invalid('prefix must be a string');
      if (prefix !== '') checkKeyText(prefix, 'prefix');
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
        throw invalid(
          `scan limit must be an integer >= 0 (0: the default ${DEFAULT_SCAN_LIMIT}), got ${limit}`,
        );
      }
      const pageSize = Math.min(
        limit === undefined || limit === 0 ? DEFAULT_SCAN_LIMIT : limit,
        MAX_SCAN_LIMIT,
      );
      const scanner = this.capable(store, 'scan');
      try {
        const page = await scanner.scan(prefix, { limit: pageSize, ...(cursor ? { cursor } : {}) });
        return page.cursor === undefined ? { keys: page.keys } : { keys: page.keys, cursor: page.cursor };
      } catch (err) {
        if (err instanceof RangeError) throw invalid(err.message);
        throw err;
      }
    });
  }

  expire(key: string, ttlSeconds: number): Promise<boolean> {
    return this.run(async (store) => {
      checkKey(key);
      checkTtlSeconds(ttlSeconds, false);
      return this.capable(store, 'ttl').expire(key, Math.ceil(ttlSeconds * 1000));
    });
  }

  ttl(key: string): Promise<number> {
    return this.run(async (store) => {
      checkKey(key);
      return this.capable(store, 'ttl').ttl(key);
    });
  }

  persist(key: string): Promise<boolean> {
    return this.run(async (store) => {
      checkKey(key);
      return this.capable(store, 'ttl').persist(key);
    });
  }
}

/** Checks every item of a batch in order; the first error is prefixed with the item's position. */
function checkEach<T>(items: readonly T[], check: (item: T) => void): void {
  for (let i = 0; i < items.length; i++) {
    try {
      check(items[i] as T);
    } catch (err) {
      if (err instanceof PrismError)
        throw new PrismError(err.code, `item ${i}: ${err.message}`, { cause: err });
      throw err;
    }
  }
}
