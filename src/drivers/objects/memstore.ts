/**
 * memstore objects: in this process, one Map per namespace shared by every memstore driver of that
 * namespace (a producer and a consumer runner in one proxy see the same objects). Not durable.
 */
import type {
  Capability,
  Driver,
  ObjectInfo,
  ObjectRange,
  ObjectReader,
  ObjectStore,
  PutObjectOptions,
} from '../interfaces.js';
import { checkNamespace } from '../kv-common.js';
import {
  checkObjectKey,
  checksumFor,
  clampRange,
  expired,
  expiryOf,
  hashingTap,
  oneChunk,
} from './common.js';

interface Entry {
  bytes: Uint8Array;
  sha256: string;
  expiresAtMs?: number;
}

const namespaces = new Map<string, Map<string, Entry>>();

export type MemstoreObjects = Driver & ObjectStore;

export function createMemstoreObjects(options: { namespace: string; now?: () => number }): MemstoreObjects {
  return new MemstoreObjectsDriver(checkNamespace(options.namespace), options.now ?? Date.now);
}

class MemstoreObjectsDriver implements MemstoreObjects {
  readonly backend = 'memstore';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['objects']);

  constructor(
    private readonly namespace: string,
    private readonly now: () => number,
  ) {}

  private get map(): Map<string, Entry> {
    let map = namespaces.get(this.namespace);
    if (map === undefined) {
      map = new Map<string, Entry>();
      namespaces.set(this.namespace, map);
    }
    return map;
  }

  private live(key: string): Entry | undefined {
    const entry = this.map.get(checkObjectKey(key));
    if (entry === undefined) return undefined;
    if (expired(entry.expiresAtMs, this.now())) {
      this.map.delete(key);
      return undefined;
    }
    return entry;
  }

  async connect(): Promise<void> {}
  async health(): Promise<void> {}
  async close(): Promise<void> {}

  async putObject(key: string, body: Uint8Array, options?: PutObjectOptions): Promise<ObjectInfo> {
    checkObjectKey(key);
    const sha256 = checksumFor(key, body, options);
    const expiresAtMs = expiryOf(options, this.now());
    const entry: Entry = { bytes: Uint8Array.from(body), sha256, ...(expiresAtMs ? { expiresAtMs } : {}) };
    this.map.set(key, entry);
    return info(key, entry);
  }

  /** Gathers the chunks (the object lives in this process's memory anyway), then stores them. */
  async putObjectStream(
    key: string,
    body: AsyncIterable<Uint8Array>,
    options?: PutObjectOptions,
  ): Promise<ObjectInfo> {
    checkObjectKey(key);
    const tap = hashingTap(key, body, options);
    const parts: Uint8Array[] = [];
    for await (const chunk of tap.chunks) parts.push(Uint8Array.from(chunk));
    const { sha256 } = tap.result();
    const expiresAtMs = expiryOf(options, this.now());
    const entry: Entry = { bytes: Buffer.concat(parts), sha256, ...(expiresAtMs ? { expiresAtMs } : {}) };
    this.map.set(key, entry);
    return info(key, entry);
  }

  async renameObject(from: string, to: string): Promise<boolean> {
    checkObjectKey(to);
    const entry = this.live(from);
    if (entry === undefined) return false;
    this.map.set(to, entry);
    this.map.delete(from);
    return true;
  }

  async getObject(key: string, range?: ObjectRange): Promise<Uint8Array | undefined> {
    const entry = this.live(key);
    if (entry === undefined) return undefined;
    const [start, end] = clampRange(range, entry.bytes.byteLength);
    return entry.bytes.slice(start, end);
  }

  async readObject(key: string): Promise<ObjectReader | undefined> {
    const entry = this.live(key);
    if (entry === undefined) return undefined;
    const bytes = entry.bytes;
    return { size: bytes.byteLength, chunks: oneChunk(bytes) };
  }

  async statObject(key: string): Promise<ObjectInfo | undefined> {
    const entry = this.live(key);
    return entry === undefined ? undefined : info(key, entry);
  }

  async deleteObject(key: string): Promise<boolean> {
    const existed = this.live(key) !== undefined;
    this.map.delete(key);
    return existed;
  }

  async sweepObjects(prefix: string): Promise<number> {
    const now = this.now();
    let removed = 0;
    for (const [key, entry] of this.map) {
      if (key.startsWith(prefix) && expired(entry.expiresAtMs, now)) {
        this.map.delete(key);
        removed++;
      }
    }
    return removed;
  }
}

function info(key: string, entry: Entry): ObjectInfo {
  return {
    key,
    size: entry.bytes.byteLength,
    sha256: entry.sha256,
    ...(entry.expiresAtMs !== undefined ? { expiresAtMs: entry.expiresAtMs } : {}),
  };
}
