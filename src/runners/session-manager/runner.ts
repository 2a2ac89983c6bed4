/**
 * The session-manager runner: sessions kept in the `store` slot (keyvalue with ttl).
 *
 * A session lives at most `session_ttl` from its creation (absolute) and ends earlier when it is
 * not touched for `idle_timeout` (sliding). The store's TTL is always min(idle_timeout, remaining
 * life), so the backend forgets a session by itself; reads also check both limits, so a store
 * whose expiry is coarse never hands out a session that should have ended.
 *
 * Session ids are 256 random bits (base64url): they are bearer secrets, not sortable ids.
 */
import { randomBytes } from 'node:crypto';
import type { AnyDriver, KeyValueStore, TtlStore } from '../../drivers/interfaces.js';
import { PrismError } from '../../errors.js';
import { RunnerBase } from '../lifecycle.js';
import type { SettingsReader } from '../settings.js';
import type { SlotSet } from '../slots.js';
import type { SessionManagerRunnerApi, SessionRecord } from '../types.js';

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

export class SessionManagerRunner extends RunnerBase implements SessionManagerRunnerApi {
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

  private get store(): AnyDriver & KeyValueStore & TtlStore {
    return this.slots.driver('store') as AnyDriver & KeyValueStore & TtlStore;
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
