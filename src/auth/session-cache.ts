import { createHash } from 'node:crypto';
import { PrismError } from '../errors.js';

/** What a cached session must offer: a way to end it (revoke what it holds). */
export interface Closable {
  close(): Promise<void>;
}

export interface SessionCacheOptions {
  /** Most live sessions; opening one more closes the least recently used. */
  maxSessions: number;
  /** Longest life of a session, in ms; never beyond the token's expiry. */
  ttlMs: number;
  /** A session unused this long is closed, in ms. */
  idleMs: number;
  /** How often expired and idle sessions are looked for, in ms. Default: idleMs / 2, 50 ms to 10 s. */
  sweepMs?: number;
  now?: () => number;
  /** A session failed to close (its revocation failed); the cache forgets it anyway. */
  onCloseError?: (err: unknown) => void;
}

interface Entry<T> {
  session: Promise<T>;
  until: number;
  lastUsed: number;
}

/** The cache key of a token within a scope: a SHA-256, so the token itself is never kept. */
export function sessionKey(scope: string, token: string): string {
  return createHash('sha256').update(scope).update('\0').update(token).digest('base64url');
}

/**
 * Sessions per caller token (DESIGN.md §7, per-request model), keyed by a hash of scope and
 * token. A session lives until its TTL or the token's expiry, whichever is first, and closes
 * sooner when idle; at most `maxSessions` live at once (least recently used closes first).
 * Concurrent first calls of one token share one opening; a failed opening is not cached.
 */
export class SessionCache<T extends Closable> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly closing = new Set<Promise<void>>();
  private readonly now: () => number;
  private sweeper?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly options: SessionCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Live sessions (for status and tests). */
  get size(): number {
    return this.entries.size;
  }

  /** The cache keys, hashes only (for tests). */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * The session of `token` in `scope`, opened with `open` on first use. `expiresAtMs` is the
   * token's expiry; a token already expired gets a session that is not kept.
   */
  async get(
    scope: string,
    token: string,
    expiresAtMs: number | undefined,
    open: () => Promise<T>,
  ): Promise<T> {
    if (this.stopped)
      throw new PrismError('E_UNAVAILABLE', 'caller sessions are closed (the proxy is stopping)');
    this.sweep();
    const key = sessionKey(scope, token);
    const now = this.now();
    const hit = this.entries.get(key);
    if (hit) {
      hit.lastUsed = now;
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.session;
    }
    while (this.entries.size >= this.options.maxSessions) {
      this.evict(this.entries.keys().next().value as string);
    }
    const until = Math.min(now + this.options.ttlMs, expiresAtMs ?? Number.POSITIVE_INFINITY);
    const entry: Entry<T> = { session: open(), until, lastUsed: now };
    this.entries.set(key, entry);
    entry.session.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    this.schedule();
    return entry.session;
  }

  /** The session under `key`, when one is cached (opened or opening). */
  peek(key: string): Promise<T> | undefined {
    return this.entries.get(key)?.session;
  }

  /** Every cached session with its key. */
  list(): Array<[key: string, session: Promise<T>]> {
    return [...this.entries].map(([key, entry]) => [key, entry.session]);
  }

  /** Closes and forgets the session under `key` now; unknown keys are ignored. */
  drop(key: string): void {
    this.evict(key);
  }

  /** Closes every session that outlived its TTL or sat idle. */
  sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.until <= now || now - entry.lastUsed >= this.options.idleMs) this.evict(key);
    }
  }

  /** Closes every session and stops sweeping; waits for the closings to finish. */
  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const key of [...this.entries.keys()]) this.evict(key);
    await Promise.all([...this.closing]);
  }

  /** Waits for sessions already being closed (tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.closing]);
  }

  private evict(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    const done = entry.session
      .then(
        (session) => session.close(),
        () => undefined,
      )
      .catch((err: unknown) => this.options.onCloseError?.(err))
      .finally(() => this.closing.delete(done));
    this.closing.add(done);
    if (this.entries.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private schedule(): void {
    if (this.sweeper || this.stopped) return;
    const every = this.options.sweepMs ?? Math.min(Math.max(this.options.idleMs / 2, 50), 10_000);
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }
}
