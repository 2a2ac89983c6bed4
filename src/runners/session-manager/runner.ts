/**
 * The session-manager runner: sessions kept in the `store` slot (keyvalue with ttl).
 *
 * A session lives at most `session_ttl` from its creation (absolute) and ends earlier when it is
 * not touched for `idle_timeout` (sliding). The store's TTL is always min(idle_timeout, remaining
 * life), so the backend forgets a session by itself; reads also check both limits, so a store
 * whose expiry is coarse never hands out a session that should have ended.
 *
 * Session ids are 256 random bits (base64url): they are bearer secrets, not sortable ids.
 *
 * The runner is also the proxy's CallerSessionStore (DESIGN.md §7): caller sessions — the caller's
 * Vault login and leases, without any secret in clear — live under `caller/<pattern>/` in the
 * same store, so all workers and proxies of the namespace share them, and each process marks
 * itself alive under `caller/<pattern>/owner/` so that the others can tell a crashed owner.
 */
import { randomBytes } from 'node:crypto';
import type { AnyDriver, KeyValueStore, ScanStore, TtlStore } from '../../drivers/interfaces.js';
import { PrismError } from '../../errors.js';
import { RunnerBase } from '../lifecycle.js';
import type { SettingsReader } from '../settings.js';
import type { SlotSet } from '../slots.js';
import type {
  CallerSessionStore,
  SessionManagerRunnerApi,
  SessionRecord,
  StoredCallerSession,
} from '../types.js';

export interface SessionManagerSettings {
  sessionTtlMs: number;
  idleTimeoutMs: number;
}

export function readSessionManagerSettings(reader: SettingsReader): SessionManagerSettings {
  const raw = reader.raw;
  return {
    sessionTtlMs: reader.duration('session_ttl', raw?.sessionTtl) ?? 3_600_000,
    idleTimeoutMs: reader.duration('idle_timeout', raw?.idleTimeout) ?? 900_000,
  };
}

export interface SessionManagerOptions {
  now?: () => number;
}

interface Stored extends SessionRecord {
  lastActiveMs: number;
}

const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
/** Caller-session records outlive their session by this much, so a crashed owner's leases are still found. */
const CALLER_RECORD_GRACE_MS = 24 * 3_600_000;
const SCAN_PAGE = 500;

export class SessionManagerRunner extends RunnerBase implements SessionManagerRunnerApi, CallerSessionStore {
  readonly type = 'session-manager' as const;
  private readonly now: () => number;

  constructor(
    namespace: string,
    pattern: string,
    slots: SlotSet,
    readonly settings: SessionManagerSettings,
    options: SessionManagerOptions = {},
  ) {
    super(namespace, pattern, slots);
    this.now = options.now ?? Date.now;
    for (const [name, value] of [
      ['session_ttl', settings.sessionTtlMs],
      ['idle_timeout', settings.idleTimeoutMs],
    ] as const) {
      if (!(value > 0))
        throw new PrismError('E_INVALID_ARGUMENT', `${this.label}: ${name} must be longer than 0`);
    }
  }

  private get store(): AnyDriver & KeyValueStore & TtlStore & ScanStore {
    return this.slots.driver('store') as AnyDriver & KeyValueStore & TtlStore & ScanStore;
  }

  private key(id: string): string {
    return `session/${this.pattern}/${id}`;
  }

  /** Milliseconds the store keeps the session from `now`: the idle timeout, cut at the end of life. */
  private storeTtl(record: Stored, now: number): number {
    const ttl = Math.min(this.settings.idleTimeoutMs, record.expiresAtMs - now);
    return Number.isFinite(ttl) ? Math.max(1, ttl) : 0;
  }

  private alive(record: Stored, now: number): boolean {
    return now < record.expiresAtMs && now < record.lastActiveMs + this.settings.idleTimeoutMs;
  }

  private async load(id: string): Promise<Stored | undefined> {
    if (typeof id !== 'string' || !SESSION_ID.test(id)) return undefined;
    const raw = await this.store.get(this.key(id));
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(Buffer.from(raw).toString('utf8')) as Stored;
    } catch {
      return undefined;
    }
  }

  private async save(record: Stored, now: number): Promise<void> {
    await this.store.set(
      this.key(record.id),
      Buffer.from(JSON.stringify(record)),
      this.storeTtl(record, now),
    );
  }

  create(subject: string, data: Record<string, string> = {}): Promise<SessionRecord> {
    return this.track(async () => {
      if (typeof subject !== 'string' || subject === '') {
        throw new PrismError('E_INVALID_ARGUMENT', 'a session needs a subject');
      }
      for (const [k, v] of Object.entries(data)) {
        if (typeof v !== 'string')
          throw new PrismError('E_INVALID_ARGUMENT', `session data ${k} must be a string`);
      }
      const now = this.now();
      const record: Stored = {
        id: randomBytes(32).toString('base64url'),
        subject,
        createdAtMs: now,
        expiresAtMs: now + this.settings.sessionTtlMs,
        data: { ...data },
        lastActiveMs: now,
      };
      await this.save(record, now);
      return toRecord(record);
    });
  }

  touch(id: string): Promise<SessionRecord | undefined> {
    return this.track(async () => {
      const record = await this.load(id);
      const now = this.now();
      if (record === undefined) return undefined;
      if (!this.alive(record, now)) {
        await this.store.delete(this.key(id));
        return undefined;
      }
      record.lastActiveMs = now;
      await this.save(record, now);
      return toRecord(record);
    });
  }

  get(id: string): Promise<SessionRecord | undefined> {
    return this.track(async () => {
      const record = await this.load(id);
      if (record === undefined || !this.alive(record, this.now())) return undefined;
      return toRecord(record);
    });
  }

  close(id: string): Promise<boolean> {
    return this.track(async () => {
      if (typeof id !== 'string' || !SESSION_ID.test(id)) return false;
      return this.store.delete(this.key(id));
    });
  }

  // --- CallerSessionStore -------------------------------------------------------------------------

  callerLimits(): { ttlMs: number; idleMs: number } {
    return { ttlMs: this.settings.sessionTtlMs, idleMs: this.settings.idleTimeoutMs };
  }

  private callerPrefix(kind: 'session' | 'token' | 'owner'): string {
    return `caller/${this.pattern}/${kind}/`;
  }

  saveCaller(record: StoredCallerSession): Promise<void> {
    return this.track(async () => {
      const ttl = Math.max(1, record.expiresAtMs - this.now()) + CALLER_RECORD_GRACE_MS;
      await this.store.set(
        this.callerPrefix('session') + record.id,
        Buffer.from(JSON.stringify(record)),
        ttl,
      );
      await this.store.set(this.callerPrefix('token') + record.key, Buffer.from(record.id), ttl);
    });
  }

  findCaller(key: string): Promise<StoredCallerSession | undefined> {
    return this.track(async () => {
      const id = await this.store.get(this.callerPrefix('token') + key);
      if (id === undefined) return undefined;
      const record = await this.loadCaller(Buffer.from(id).toString('utf8'));
      return record?.key === key ? record : undefined;
    });
  }

  getCaller(id: string): Promise<StoredCallerSession | undefined> {
    return this.track(() => this.loadCaller(id));
  }

  listCallers(): Promise<StoredCallerSession[]> {
    return this.track(async () => {
      const prefix = this.callerPrefix('session');
      const records: StoredCallerSession[] = [];
      let cursor: string | undefined;
      do {
        const page = await this.store.scan(prefix, {
          limit: SCAN_PAGE,
          ...(cursor !== undefined ? { cursor } : {}),
        });
        for (const key of page.keys) {
          const record = await this.loadCaller(key.slice(prefix.length));
          if (record) records.push(record);
        }
        cursor = page.cursor;
      } while (cursor !== undefined);
      return records.sort((a, b) => a.createdAtMs - b.createdAtMs || a.id.localeCompare(b.id));
    });
  }

  deleteCaller(record: StoredCallerSession): Promise<void> {
    return this.track(async () => {
      await this.store.delete(this.callerPrefix('session') + record.id);
      const tokenKey = this.callerPrefix('token') + record.key;
      const current = await this.store.get(tokenKey);
      if (current !== undefined && Buffer.from(current).toString('utf8') === record.id) {
        await this.store.delete(tokenKey);
      }
    });
  }

  beat(owner: string, ttlMs: number): Promise<void> {
    return this.track(() => this.store.set(this.callerPrefix('owner') + owner, Buffer.from('1'), ttlMs));
  }

  ownerAlive(owner: string): Promise<boolean> {
    return this.track(() => this.store.exists(this.callerPrefix('owner') + owner));
  }

  private async loadCaller(id: string): Promise<StoredCallerSession | undefined> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return undefined;
    const raw = await this.store.get(this.callerPrefix('session') + id);
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(Buffer.from(raw).toString('utf8')) as StoredCallerSession;
    } catch {
      return undefined;
    }
  }
}

function toRecord(stored: Stored): SessionRecord {
  return {
    id: stored.id,
    subject: stored.subject,
    createdAtMs: stored.createdAtMs,
    expiresAtMs: stored.expiresAtMs,
    data: { ...stored.data },
  };
}
