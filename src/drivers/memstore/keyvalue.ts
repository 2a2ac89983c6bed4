/**
 * memstore keyvalue: keys live in this process, one Map per namespace, shared by every memstore
 * driver of that namespace in the process (a restarted runner sees its keys again; a restarted
 * process does not: memstore is not durable). Expiry is lazy on every read plus a periodic sweep.
 * Scan walks the namespace's keys in UTF-8 byte order (compareKeys); the cursor is the last key
 * returned.
 */
import type { Capability, Driver, KeyValueStore, ScanPage, ScanStore, TtlStore } from '../interfaces.js';
import {
  KEYVALUE_CAPABILITIES,
  compareKeys,
  checkExpireTtl,
  checkNamespace,
  checkScanLimit,
  checkSetTtl,
  decodeKeyCursor,
  encodeKeyCursor,
} from '../kv-common.js';

interface Entry {
  value: Uint8Array;
  /** Epoch ms; 0 = no expiry. */
  expiresAt: number;
}

class NamespaceMap {
  readonly entries = new Map<string, Entry>();
  /** Keys in sorted order; rebuilt on the next scan after a key is added or removed. */
  private sorted: string[] | undefined;

  live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== 0 && entry.expiresAt <= now) {
      this.remove(key);
      return undefined;
    }
    return entry;
  }

  put(key: string, entry: Entry): void {
    if (!this.entries.has(key)) this.sorted = undefined;
    this.entries.set(key, entry);
  }

  remove(key: string): boolean {
    const had = this.entries.delete(key);
    if (had) this.sorted = undefined;
    return had;
  }

  sortedKeys(): string[] {
    this.sorted ??= [...this.entries.keys()].sort(compareKeys);
    return this.sorted;
  }

  sweep(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt !== 0 && entry.expiresAt <= now) this.remove(key);
    }
  }
}

const namespaces = new Map<string, NamespaceMap>();

const SWEEP_INTERVAL_MS = 30_000;

export interface MemstoreKeyValueOptions {
  namespace: string;
}

export type MemstoreKeyValue = Driver & KeyValueStore & TtlStore & ScanStore;

export function createMemstoreKeyValue(options: MemstoreKeyValueOptions): MemstoreKeyValue {
  return new MemstoreKeyValueDriver(checkNamespace(options.namespace));
}

/** First index in sorted `keys` whose key is >= `bound` (or > `bound` when `strict`). */
function searchSorted(keys: readonly string[], bound: string, strict: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const key = keys[mid] as string;
    const order = compareKeys(key, bound);
    if (order < 0 || (strict && order === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class MemstoreKeyValueDriver implements MemstoreKeyValue {
  readonly backend = 'memstore';
  readonly capabilities: ReadonlySet<Capability> = KEYVALUE_CAPABILITIES;
  private readonly map: NamespaceMap;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(namespace: string) {
    let map = namespaces.get(namespace);
    if (map === undefined) {
      map = new NamespaceMap();
      namespaces.set(namespace, map);
    }
    this.map = map;
  }

  async connect(): Promise<void> {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(() => this.map.sweep(Date.now()), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  async health(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  async set(key: string, value: Uint8Array, ttlMs?: number): Promise<void> {
    const ttl = checkSetTtl(ttlMs);
    // A copy of its own, outside Node's buffer pool: callers may reuse their buffers.
    this.map.put(key, {
      value: new Uint8Array(value),
      expiresAt: ttl === 0 ? 0 : Date.now() + ttl,
    });
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const entry = this.map.live(key, Date.now());
    if (entry === undefined) return undefined;
    // A copy from Node's buffer pool: several times faster than slice() for small values, and
    // short-lived, so it does not pin pool slabs the way a stored value would.
    const copy = Buffer.allocUnsafe(entry.value.byteLength);
    copy.set(entry.value);
    return copy;
  }

  async delete(key: string): Promise<boolean> {
    const live = this.map.live(key, Date.now()) !== undefined;
    this.map.remove(key);
    return live;
  }

  async exists(key: string): Promise<boolean> {
    return this.map.live(key, Date.now()) !== undefined;
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const ttl = checkExpireTtl(ttlMs);
    const now = Date.now();
    const entry = this.map.live(key, now);
    if (entry === undefined) return false;
    entry.expiresAt = now + ttl;
    return true;
  }

  async ttl(key: string): Promise<number> {
    const now = Date.now();
    const entry = this.map.live(key, now);
    if (entry === undefined) return -2;
    return entry.expiresAt === 0 ? -1 : entry.expiresAt - now;
  }

  async persist(key: string): Promise<boolean> {
    const entry = this.map.live(key, Date.now());
    if (entry === undefined) return false;
    entry.expiresAt = 0;
    return true;
  }

  async scan(prefix: string, options: { limit: number; cursor?: string }): Promise<ScanPage> {
    const limit = checkScanLimit(options.limit);
    const after = decodeKeyCursor(options.cursor);
    const keys = this.map.sortedKeys();
    const now = Date.now();
    // Keys with the prefix are contiguous in sorted order and start at the first key >= prefix.
    let i = searchSorted(keys, prefix, false);
    if (after !== undefined) i = Math.max(i, searchSorted(keys, after, true));
    const page: string[] = [];
    for (; i < keys.length; i++) {
      const key = keys[i] as string;
      if (!key.startsWith(prefix)) break;
      const entry = this.map.entries.get(key);
      if (entry === undefined || (entry.expiresAt !== 0 && entry.expiresAt <= now)) continue;
      if (page.length === limit)
        return { keys: page, cursor: encodeKeyCursor(page[page.length - 1] as string) };
      page.push(key);
    }
    return { keys: page };
  }
}
