/**
 * redis keyvalue: ioredis with auto-pipelining; every key is stored as `<namespace>:<key>`.
 *
 * Failing fast is the point of the connection options: no offline queue and one retry per request,
 * so while Redis is down a call rejects at once with BackendDownError instead of waiting, while
 * the retry strategy keeps reconnecting in the background and the driver recovers by itself.
 *
 * Scan uses SCAN with MATCH on the escaped prefix. SCAN returns whatever the visited hash buckets
 * hold, fewer or more keys than asked for; a page takes at most `limit` of them, and when it stops
 * inside a SCAN batch the cursor records the Redis cursor of that batch and the last key taken, so
 * the next page repeats the batch (sorted) and continues after that key.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { BackendDownError } from '../interfaces.js';
import type { Capability, Driver, KeyValueStore, ScanPage, ScanStore, TtlStore } from '../interfaces.js';
import {
  KEYVALUE_CAPABILITIES,
  asBuffer,
  checkExpireTtl,
  checkNamespace,
  checkScanLimit,
  checkSetTtl,
  describeCause,
  safeTarget,
} from '../kv-common.js';

export interface RedisKeyValueOptions {
  /** redis://[user:password@]host:port[/db] */
  endpoint: string;
  credentials?: { username: string; password: string };
  namespace: string;
  /** A command without a reply for this long fails with BackendDownError. Default 5 s. */
  commandTimeoutMs?: number;
  /** Extra ioredis options (tests, benchmarks). */
  client?: RedisOptions;
}

export type RedisKeyValue = Driver & KeyValueStore & TtlStore & ScanStore;

/** COUNT hint per SCAN call: how many buckets Redis visits, not how many keys it returns. */
const SCAN_COUNT = 1_000;

export function createRedisKeyValue(options: RedisKeyValueOptions): RedisKeyValue {
  return new RedisKeyValueDriver(options);
}

/** Escapes the glob metacharacters of Redis MATCH patterns. */
export function escapeRedisGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

interface RedisScanCursor {
  /** Redis SCAN cursor of the batch to (re)visit. */
  c: string;
  /** Last key already returned from that batch. */
  a?: string;
}

function encodeCursor(cursor: RedisScanCursor): string {
  return Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string | undefined): RedisScanCursor {
  if (cursor === undefined) return { c: '0' };
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (typeof parsed === 'object' && parsed !== null) {
      const { c, a } = parsed as Record<string, unknown>;
      if (typeof c === 'string' && /^\d+$/.test(c) && (a === undefined || typeof a === 'string')) {
        return a === undefined ? { c } : { c, a };
      }
    }
  } catch {
    // fall through
  }
  throw new RangeError('invalid scan cursor');
}

/** Errors that come from Redis itself (WRONGTYPE, OOM...) are answers, not outages. */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

class RedisKeyValueDriver implements RedisKeyValue {
  readonly backend = 'redis';
  readonly capabilities: ReadonlySet<Capability> = KEYVALUE_CAPABILITIES;
  private readonly prefix: string;
  private readonly target: string;
  /** The client of the current connection; a failed connect() drops it, the next builds anew. */
  private redis: Redis | undefined;
  private connecting: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: RedisKeyValueOptions) {
    this.prefix = `${checkNamespace(options.namespace)}:`;
    this.target = safeTarget(options.endpoint);
  }

  private newClient(): Redis {
    const client = new Redis(this.options.endpoint, {
      lazyConnect: true,
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: this.options.commandTimeoutMs ?? 5_000,
      // Once connected, reconnect forever: quickly at first, then once a second.
      retryStrategy: (times) => Math.min(times * 100, 1_000),
      ...(this.options.credentials ?? {}),
      ...this.options.client,
    });
    // Without a listener ioredis prints every connection error; commands report their own.
    client.on('error', () => {});
    return client;
  }

  private down(what: string, err: unknown): BackendDownError {
    return new BackendDownError('redis', `${what} at ${this.target} (${describeCause(err)})`, err);
  }

  /** Runs a command; connection failures and timeouts become BackendDownError. */
  private async call<T>(what: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
    if (this.closed) throw new BackendDownError('redis', `driver for ${this.target} is closed`);
    const redis = this.redis;
    if (redis === undefined)
      throw new BackendDownError('redis', `not connected to ${this.target} (call connect())`);
    try {
      return await fn(redis);
    } catch (err) {
      if (isReplyError(err)) throw err;
      throw this.down(what, err);
    }
  }

  async connect(): Promise<void> {
    if (this.closed) throw new BackendDownError('redis', `driver for ${this.target} is closed`);
    if (this.redis === undefined) {
      this.connecting ??= this.open().finally(() => (this.connecting = undefined));
      await this.connecting;
    }
    // Connected before: the client reconnects by itself; report whether it is back.
    await this.health();
  }

  private async open(): Promise<void> {
    const client = this.newClient();
    // connect() rejects with a bare "Connection is closed."; the cause arrives as an error event.
    let cause: unknown;
    client.once('error', (err: unknown) => (cause ??= err));
    try {
      await client.connect();
    } catch (err) {
      // Stop the retries of this client: a failed connect() leaves nothing running.
      client.disconnect();
      throw this.down('cannot connect', cause ?? err);
    }
    if (this.closed) {
      client.disconnect();
      throw new BackendDownError('redis', `driver for ${this.target} is closed`);
    }
    this.redis = client;
  }

  async health(): Promise<void> {
    await this.call('PING failed', (r) => r.ping());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.connecting?.catch(() => {});
    const redis = this.redis;
    this.redis = undefined;
    if (redis === undefined) return;
    if (redis.status === 'ready') {
      // QUIT is queued behind every in-flight command, so their replies arrive first.
      await redis.quit().catch(() => redis.disconnect());
    } else {
      redis.disconnect();
    }
  }

  async set(key: string, value: Uint8Array, ttlMs?: number): Promise<void> {
    const ttl = checkSetTtl(ttlMs);
    const k = this.prefix + key;
    const v = asBuffer(value);
    // Plain SET drops an earlier TTL, which is what `ttlMs` 0 promises.
    await this.call('SET failed', (r) => (ttl === 0 ? r.set(k, v) : r.set(k, v, 'PX', ttl)));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const value = await this.call('GET failed', (r) => r.getBuffer(this.prefix + key));
    return value ?? undefined;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.call('DEL failed', (r) => r.del(this.prefix + key))) === 1;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.call('EXISTS failed', (r) => r.exists(this.prefix + key))) === 1;
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const ttl = checkExpireTtl(ttlMs);
    return (await this.call('PEXPIRE failed', (r) => r.pexpire(this.prefix + key, ttl))) === 1;
  }

  async ttl(key: string): Promise<number> {
    // PTTL answers -1 (no expiry) and -2 (missing) exactly as the contract wants.
    return this.call('PTTL failed', (r) => r.pttl(this.prefix + key));
  }

  async persist(key: string): Promise<boolean> {
    const k = this.prefix + key;
    // PERSIST answers 0 both for a missing key and for a key without expiry; the contract
    // distinguishes them, so ask EXISTS in the same pipeline when PERSIST says 0.
    const [persisted, exists] = await this.call('PERSIST failed', async (r) => {
      const result = await r.multi().persist(k).exists(k).exec();
      if (result === null) throw new Error('PERSIST transaction aborted');
      return result.map(([err, reply]) => {
        if (err) throw err;
        return reply as number;
      });
    });
    return persisted === 1 || exists === 1;
  }

  async scan(prefix: string, options: { limit: number; cursor?: string }): Promise<ScanPage> {
    const limit = checkScanLimit(options.limit);
    let { c: redisCursor, a: after } = decodeCursor(options.cursor);
    const match = `${escapeRedisGlob(this.prefix + prefix)}*`;
    const strip = this.prefix.length;
    const keys: string[] = [];
    for (;;) {
      const [next, batch] = await this.call('SCAN failed', (r) =>
        r.scan(redisCursor, 'MATCH', match, 'COUNT', SCAN_COUNT),
      );
      const candidates = [...new Set(batch)]
        .map((k) => k.slice(strip))
        .filter((k) => after === undefined || k > after)
        .sort();
      const room = limit - keys.length;
      if (candidates.length > room) {
        keys.push(...candidates.slice(0, room));
        return { keys, cursor: encodeCursor({ c: redisCursor, a: keys[keys.length - 1] as string }) };
      }
      keys.push(...candidates);
      if (next === '0') return { keys };
      redisCursor = next;
      after = undefined;
      if (keys.length === limit) return { keys, cursor: encodeCursor({ c: redisCursor }) };
    }
  }
}
