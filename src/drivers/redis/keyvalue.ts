/**
 * redis keyvalue: ioredis with auto-pipelining; every key is stored as `<namespace>:<key>`.
 *
 * Failing fast is the point of the connection options: no offline queue and one retry per request,
 * so while Redis is down a call rejects at once with BackendDownError instead of waiting, while
 * the retry strategy keeps reconnecting in the background and the driver recovers by itself.
 *
 * Scan walks an index kept beside the keys: the sorted set `<namespace>:` (the empty key, which no
 * caller may use) holds every key of the namespace with score 0, so ZRANGE BYLEX returns them in
 * UTF-8 byte order (Redis compares members with memcmp) from just after the cursor, which is the
 * last key of the previous page. Redis SCAN cannot give that order. SET adds to the index and DEL
 * removes from it in the same MULTI; a key that expired leaves its member behind, so scan checks
 * what it returns with EXISTS and removes the members whose keys are gone. The index lives under
 * the namespace's own prefix, so a Vault-issued user limited to `~<namespace>:*` can use it.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { BackendDownError } from '../interfaces.js';
import type { Capability, Driver, KeyValueStore, ScanPage, ScanStore, TtlStore } from '../interfaces.js';
import {
  KEYVALUE_CAPABILITIES,
  asBuffer,
  decodeKeyCursor,
  encodeKeyCursor,
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

/** Index members read per ZRANGE BYLEX round of a scan (beyond the page, to skip expired keys). */
const SCAN_SLACK = 16;

export function createRedisKeyValue(options: RedisKeyValueOptions): RedisKeyValue {
  return new RedisKeyValueDriver(options);
}

/** Escapes the glob metacharacters of Redis MATCH patterns. */
export function escapeRedisGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
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

  /** The connected client; BackendDownError when closed or not connected. */
  private client(): Redis {
    if (this.closed) throw new BackendDownError('redis', `driver for ${this.target} is closed`);
    const redis = this.redis;
    if (redis === undefined)
      throw new BackendDownError('redis', `not connected to ${this.target} (call connect())`);
    return redis;
  }

  /** What a command's failure becomes: Redis's own errors as they are, the rest BackendDownError. */
  private failure(what: string, err: unknown): unknown {
    return isReplyError(err) ? err : this.down(what, err);
  }

  /** Runs a command; connection failures and timeouts become BackendDownError. */
  private async call<T>(what: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = this.client();
    try {
      return await fn(redis);
    } catch (err) {
      throw this.failure(what, err);
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
    if (key === '') throw new RangeError('the empty key is reserved for the scan index');
    const k = this.prefix + key;
    const v = asBuffer(value);
    await this.call('SET failed', (r) => {
      const tx = r.multi();
      // Plain SET drops an earlier TTL, which is what `ttlMs` 0 promises.
      if (ttl === 0) tx.set(k, v);
      else tx.set(k, v, 'PX', ttl);
      return exec(tx.zadd(this.prefix, 0, key));
    });
  }

  // get and getMany are the hot path: the command inline, without call()'s closure.
  async get(key: string): Promise<Uint8Array | undefined> {
    const redis = this.client();
    try {
      return (await redis.getBuffer(this.prefix + key)) ?? undefined;
    } catch (err) {
      throw this.failure('GET failed', err);
    }
  }

  async getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    if (keys.length === 0) return [];
    const redis = this.client();
    const full = new Array<string>(keys.length);
    for (let i = 0; i < keys.length; i++) full[i] = this.prefix + (keys[i] as string);
    let values: Array<Buffer | null | undefined>;
    try {
      values = await redis.mgetBuffer(full);
    } catch (err) {
      throw this.failure('MGET failed', err);
    }
    for (let i = 0; i < values.length; i++) if (values[i] === null) values[i] = undefined;
    return values as Array<Uint8Array | undefined>;
  }

  async setMany(items: ReadonlyArray<{ key: string; value: Uint8Array; ttlMs?: number }>): Promise<void> {
    if (items.length === 0) return;
    const checked = items.map(({ key, value, ttlMs }) => {
      if (key === '') throw new RangeError('the empty key is reserved for the scan index');
      return { key, value: asBuffer(value), ttl: checkSetTtl(ttlMs) };
    });
    await this.call('SET failed', (r) => {
      const tx = r.multi();
      for (const { key, value, ttl } of checked) {
        if (ttl === 0) tx.set(this.prefix + key, value);
        else tx.set(this.prefix + key, value, 'PX', ttl);
      }
      return exec(tx.zadd(this.prefix, ...checked.flatMap(({ key }) => [0, key])));
    });
  }

  async delete(key: string): Promise<boolean> {
    if (key === '') return false;
    const [deleted] = await this.call('DEL failed', (r) =>
      exec(
        r
          .multi()
          .del(this.prefix + key)
          .zrem(this.prefix, key),
      ),
    );
    return deleted === 1;
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
    const [persisted, exists] = await this.call('PERSIST failed', (r) =>
      exec(r.multi().persist(k).exists(k)),
    );
    return persisted === 1 || exists === 1;
  }

  async scan(prefix: string, options: { limit: number; cursor?: string }): Promise<ScanPage> {
    const limit = checkScanLimit(options.limit);
    const after = decodeKeyCursor(options.cursor);
    // The page wants `limit` live keys and to know whether one more exists.
    const wanted = limit + 1;
    const live: string[] = [];
    let min = after?.startsWith(prefix) ? `(${after}` : `[${prefix}`;
    for (;;) {
      const requested = wanted - live.length + SCAN_SLACK;
      const batch = await this.call('ZRANGE failed', (r) =>
        r.zrangebylex(this.prefix, min, '+', 'LIMIT', 0, requested),
      );
      const inRange = batch.filter((key) => key.startsWith(prefix));
      if (inRange.length > 0) {
        const exists = await this.call('EXISTS failed', (r) => {
          const pipeline = r.pipeline();
          for (const key of inRange) pipeline.exists(this.prefix + key);
          return exec(pipeline);
        });
        const gone = inRange.filter((_, i) => exists[i] !== 1);
        if (gone.length > 0) await this.call('ZREM failed', (r) => r.zrem(this.prefix, ...gone));
        live.push(...inRange.filter((_, i) => exists[i] === 1));
      }
      // Done with a full page, at the end of the index, or past the keys with this prefix.
      if (live.length >= wanted || batch.length < requested || inRange.length < batch.length) break;
      min = `(${batch[batch.length - 1] as string}`;
    }
    if (live.length > limit) {
      const keys = live.slice(0, limit);
      return { keys, cursor: encodeKeyCursor(keys[keys.length - 1] as string) };
    }
    return { keys: live };
  }
}

/** Runs a MULTI or pipeline and returns its replies, throwing the first command error. */
async function exec(commands: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<number[]> {
  const result = await commands.exec();
  if (result === null) throw new Error('transaction aborted');
  return result.map(([err, reply]) => {
    if (err) throw err;
    return reply as number;
  });
}
