/**
 * Per-request sessions for keyvalue (DESIGN.md §7), shared through the namespace's session-manager
 * store: each caller's verified token becomes a caller session that logs in to Vault with the
 * caller's own JWT (`auth/<mount>/login`) and leases `database/creds/<role>` for the slots the
 * caller uses. The session is recorded in the store (who, the token's accessor, lease ids, times;
 * the Vault token and credentials only sealed with the caller's token), so that:
 *
 * - every worker and proxy of the namespace finds it: a token's call on another worker reuses the
 *   session (same Vault token, same backend user) instead of leasing again;
 * - its TTL (the shorter of the pattern's session_ttl, --caller-session-ttl and the token's
 *   expiry) and idle timeout (the shorter of idle_timeout and --caller-session-idle) hold across
 *   workers: the last use is shared;
 * - a process that opened sessions and died (its owner mark expired) leaves sessions that any
 *   other process revokes at its next sweep, with its service identity;
 * - operators list and revoke sessions (CallerSessionAdmin).
 *
 * The opener owns a session: it renews its token and leases and, when the session ends, closes
 * its connections and revokes leases and token. Other processes only borrow it. Vault or the
 * store down means E_UNAVAILABLE for calls that need a new session; nothing falls back to static
 * or service credentials.
 */
import { randomUUID } from 'node:crypto';
import { PrismError } from '../errors.js';
import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import type { CredentialResolver } from '../runners/slots.js';
import type {
  BackendSession,
  CallerSessionAdmin,
  CallerSessionStore,
  StoredCallerSession,
} from '../runners/types.js';
import { SessionCache, sessionKey, type Closable } from './session-cache.js';
import { seal, unseal } from './session-seal.js';
import { vaultClients } from './vault-client.js';
import {
  databaseRole,
  namespaceVault,
  scopeKey,
  vaultScope,
  type VaultDefaults,
  type VaultScope,
} from './vault-scope.js';
import { VaultSession, type SessionLogger } from './vault-sessions.js';

export interface RequestSessionOptions {
  /** The process's Vault flags; a namespace's own auth.vault wins. */
  defaults: VaultDefaults;
  /** Longest session life, ms (never beyond the token's expiry or session_ttl). Default 15 min. */
  ttlMs?: number;
  /** A session unused this long closes, ms (never beyond idle_timeout). Default 5 min. */
  idleMs?: number;
  /** Most sessions this process holds; the least recently used closes first. Default 1000. */
  maxSessions?: number;
  /** How often the stores are swept (idle, expired, revoked and orphaned sessions), ms. Default: idle / 2, 1 s to 10 s. */
  sweepMs?: number;
  /** The session stores of the namespaces this process serves, swept even before any call. */
  stores?: () => Array<{ store: CallerSessionStore; namespace: NamespaceRequest }>;
  /** This process's service-identity sessions: revoke sessions whose owner is gone. */
  service?: (scope: VaultScope) => Promise<VaultSession>;
  logger?: SessionLogger;
  now?: () => number;
}

export const REQUEST_SESSION_DEFAULTS = {
  ttlMs: 15 * 60_000,
  idleMs: 5 * 60_000,
  maxSessions: 1000,
};

/** What the sealed box of a stored session holds. */
interface SealedSecrets {
  token: string;
  creds: Record<string, { username: string; password: string }>;
}

/** One caller's session in this process: owned (opened here) or borrowed (opened elsewhere). */
class CallerSession implements BackendSession, Closable {
  private readonly hooks: Array<() => Promise<void>> = [];
  private readonly leasing = new Map<string, Promise<{ username: string; password: string }>>();
  /** Record updates of this process, one at a time (a touch must not undo a lease's update). */
  private writes: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    public record: StoredCallerSession,
    private readonly secrets: SealedSecrets,
    private readonly vault: VaultSession,
    private readonly callerToken: string,
    /** The namespace's current session store (a namespace update replaces its runners). */
    public store: CallerSessionStore,
    readonly owned: boolean,
    private readonly logger?: SessionLogger,
  ) {}

  get id(): string {
    return this.record.id;
  }

  readonly credentials: CredentialResolver = async (ref, slot) => {
    // Another worker may have leased this slot's user for the session since it was attached here.
    if (!this.secrets.creds[ref] && !this.owned) {
      const latest = await this.store.getCaller(this.id);
      if (latest) Object.assign(this.secrets.creds, this.openBox(latest));
    }
    const known = this.secrets.creds[ref];
    if (known) return { ...known };
    let pending = this.leasing.get(ref);
    if (!pending) {
      pending = this.lease(ref, databaseRole(ref, `${slot.namespace}/${slot.pattern}: slot ${slot.slot}`));
      this.leasing.set(ref, pending);
      pending.catch(() => this.leasing.delete(ref));
    }
    // Leases end with the session (its owner revokes them), not with one worker's connection.
    return { ...(await pending) };
  };

  /**
   * Re-reads the record, changes it and saves it, after this process's previous update. Across
   * processes two updates can still cross; the token's accessor, revoked with the session,
   * revokes every lease of the token even if one is missing from the record.
   */
  private update(change: (latest: StoredCallerSession) => StoredCallerSession | undefined): Promise<void> {
    const next = this.writes.then(async () => {
      const latest = await this.store.getCaller(this.id);
      if (!latest) return;
      const changed = change(latest);
      if (!changed) return;
      this.record = changed;
      await this.store.saveCaller(changed);
    });
    this.writes = next.catch(() => undefined);
    return next;
  }

  /** Leases credentials with the session's token and records them for the other workers. */
  private async lease(ref: string, role: string): Promise<{ username: string; password: string }> {
    const creds = await this.vault.databaseCredentials(role);
    const mine = { username: creds.username, password: creds.password };
    this.secrets.creds[ref] = mine;
    await this.update((latest) => ({
      ...latest,
      leases: [...latest.leases, { id: creds.leaseId, role, seconds: creds.duration }],
      sealed: seal(
        {
          token: this.secrets.token,
          creds: { ...this.openBox(latest), [ref]: mine },
        } satisfies SealedSecrets,
        this.callerToken,
        this.id,
      ),
    }));
    return mine;
  }

  private openBox(record: StoredCallerSession): SealedSecrets['creds'] {
    try {
      return unseal<SealedSecrets>(record.sealed, this.callerToken, record.id).creds;
    } catch {
      return {};
    }
  }

  /** Shares the last use, at most every `every` ms, so idle timeouts hold across workers. */
  touch(now: number, every: number): void {
    if (now - this.record.lastUsedMs < every) return;
    this.record.lastUsedMs = now;
    this.update((latest) => (latest.lastUsedMs >= now ? undefined : { ...latest, lastUsedMs: now })).catch(
      (err: unknown) =>
        this.logger?.warn(
          { session: this.id, err: (err as Error).message },
          'sharing a session’s last use failed',
        ),
    );
  }

  /** The owner renews and revokes leases that borrowers took with the session's token. */
  adopt(record: StoredCallerSession): void {
    this.record = record;
    for (const lease of record.leases) this.vault.adoptLease(lease.id, lease.role, lease.seconds);
  }

  onClose(hook: () => Promise<void>): void {
    if (this.closed) {
      void hook().catch(() => undefined);
      return;
    }
    this.hooks.push(hook);
  }

  /** Closes this process's connections; the owner also revokes leases and token and forgets the record. */
  async close(): Promise<void> {
    this.closed = true;
    for (const hook of this.hooks.splice(0).reverse()) {
      await hook().catch((err: unknown) =>
        this.logger?.warn({ err: (err as Error).message }, 'closing a caller connection failed'),
      );
    }
    await this.vault.close();
    if (!this.owned) return;
    await this.store.deleteCaller(this.record);
    this.logger?.info({ session: this.id, namespace: this.record.namespace }, 'caller session closed');
  }
}

export class RequestSessions implements CallerSessionAdmin {
  /** This process, as the owner of the sessions it opens. */
  readonly owner = randomUUID();
  private readonly cache: SessionCache<CallerSession>;
  private readonly clientFor: ReturnType<typeof vaultClients>;
  private readonly stores = new Map<CallerSessionStore, NamespaceRequest>();
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly idleMs: number;
  private readonly sweepMs: number;
  private sweeper?: NodeJS.Timeout;
  /** When this process last marked itself alive in each store. */
  private readonly beats = new WeakMap<CallerSessionStore, number>();
  private sweeping?: Promise<void>;
  private stopped = false;

  constructor(private readonly options: RequestSessionOptions) {
    this.now = options.now ?? Date.now;
    this.ttlMs = options.ttlMs ?? REQUEST_SESSION_DEFAULTS.ttlMs;
    this.idleMs = options.idleMs ?? REQUEST_SESSION_DEFAULTS.idleMs;
    this.sweepMs = options.sweepMs ?? Math.min(Math.max(this.idleMs / 2, 1000), 10_000);
    this.clientFor = vaultClients(options.defaults.caFile);
    // Idle is decided from the shared last use by the sweep, never by one process's cache.
    this.cache = new SessionCache({
      ttlMs: this.ttlMs,
      idleMs: Number.POSITIVE_INFINITY,
      maxSessions: options.maxSessions ?? REQUEST_SESSION_DEFAULTS.maxSessions,
      now: this.now,
      onCloseError: (err) =>
        options.logger?.warn({ err: (err as Error).message }, 'revoking a caller session failed'),
    });
  }

  /** Sessions this process holds (owned or borrowed). */
  get size(): number {
    return this.cache.size;
  }

  /** Starts sweeping the stores every sweep interval (the first sweep runs at once). */
  start(): void {
    if (this.sweeper || this.stopped) return;
    this.sweeper = setInterval(() => void this.sweep(), this.sweepMs);
    this.sweeper.unref();
    void this.sweep();
  }

  /**
   * The caller's session for a namespace's Vault: this process's, another worker's or proxy's
   * from the store, or a new one. `expiresAt`: the token's exp, seconds since the epoch.
   */
  async open(
    token: string,
    caller: { subject: string; expiresAt?: number | undefined },
    ns: NamespaceRequest,
    store: CallerSessionStore,
  ): Promise<BackendSession> {
    this.stores.set(store, ns);
    const scope = vaultScope(ns.namespace, namespaceVault(ns), this.options.defaults);
    const scopeText = `${ns.namespace}\0${scopeKey(scope)}`;
    const expiresAtMs = caller.expiresAt !== undefined ? caller.expiresAt * 1000 : undefined;
    const session = await this.cache.get(scopeText, token, expiresAtMs, () =>
      this.attach(sessionKey(scopeText, token), token, caller.subject, expiresAtMs, scope, ns, store),
    );
    session.store = store;
    session.touch(this.now(), this.touchEvery(session.record));
    return session;
  }

  private touchEvery(record: StoredCallerSession): number {
    return Math.min(record.idleMs / 4, this.sweepMs);
  }

  private limits(store: CallerSessionStore): { ttlMs: number; idleMs: number } {
    const declared = store.callerLimits();
    return { ttlMs: Math.min(this.ttlMs, declared.ttlMs), idleMs: Math.min(this.idleMs, declared.idleMs) };
  }

  private async attach(
    key: string,
    token: string,
    subject: string,
    tokenExpiresAtMs: number | undefined,
    scope: VaultScope,
    ns: NamespaceRequest,
    store: CallerSessionStore,
  ): Promise<CallerSession> {
    const { logger } = this.options;
    const client = this.clientFor(scope.address);
    const found = await this.storeCall(ns, () => store.findCaller(key));
    // Borrowed only while its owner lives: an orphan's users may already be revoked.
    if (found && this.alive(found) && (await this.shareable(store, ns, found))) {
      try {
        const secrets = unseal<SealedSecrets>(found.sealed, token, found.id);
        logger?.info({ session: found.id, namespace: ns.namespace }, 'caller session shared');
        return new CallerSession(
          found,
          secrets,
          VaultSession.resume(client, secrets.token, logger),
          token,
          store,
          false,
          logger,
        );
      } catch {
        // Sealed with another token (a hash collision is not a real case): open a new one.
      }
    }
    const vault = await VaultSession.open({
      client,
      mount: scope.mount,
      role: scope.role,
      jwt: token,
      ...(logger !== undefined ? { logger } : {}),
    });
    const now = this.now();
    const limits = this.limits(store);
    const id = randomUUID();
    const secrets: SealedSecrets = { token: vault.tokenForSealing(), creds: {} };
    const record: StoredCallerSession = {
      id,
      key,
      namespace: ns.namespace,
      subject,
      owner: this.owner,
      vault: scope.address,
      accessor: vault.accessor,
      leases: [],
      createdAtMs: now,
      lastUsedMs: now,
      expiresAtMs: Math.min(now + limits.ttlMs, tokenExpiresAtMs ?? Number.POSITIVE_INFINITY),
      idleMs: limits.idleMs,
      sealed: seal(secrets, token, id),
    };
    try {
      // Marked alive before the record exists: nobody may take the new session for an orphan.
      await this.storeCall(ns, () => this.beat(store));
      await this.storeCall(ns, () => store.saveCaller(record));
    } catch (err) {
      await vault.close().catch(() => undefined);
      throw err;
    }
    logger?.info({ session: id, namespace: ns.namespace }, 'caller session opened');
    return new CallerSession(record, secrets, vault, token, store, true, logger);
  }

  /** A stored session another live process owns; an orphan is revoked on the way (best effort). */
  private async shareable(
    store: CallerSessionStore,
    ns: NamespaceRequest,
    record: StoredCallerSession,
  ): Promise<boolean> {
    if (record.owner !== this.owner && (await this.storeCall(ns, () => store.ownerAlive(record.owner)))) {
      return true;
    }
    await this.revokeOrphan(store, ns, record).catch((err: unknown) =>
      this.options.logger?.warn(
        { session: record.id, err: (err as Error).message },
        'revoking a departed owner’s caller session failed; the sweep retries',
      ),
    );
    return false;
  }

  /** Store failures are E_UNAVAILABLE: no session without its record. */
  private async storeCall<T>(ns: NamespaceRequest, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw new PrismError(
        'E_UNAVAILABLE',
        `the caller-session store of namespace '${ns.namespace}' is unavailable: ${(err as Error).message}`,
        { hint: 'caller sessions live in the session-manager pattern’s store; no call runs without one' },
      );
    }
  }

  private alive(record: StoredCallerSession): boolean {
    const now = this.now();
    return !record.revokeRequested && now < record.expiresAtMs && now - record.lastUsedMs < record.idleMs;
  }

  // --- The sweep ----------------------------------------------------------------------------------

  /** One sweep over every known store; sweeps never overlap. Resolves when done. */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepAll().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepAll(): Promise<void> {
    // The stores served now (a namespace update replaces its runners; a removed one is gone);
    // without a list, the stores calls came through. Only Vault namespaces have caller sessions.
    if (this.options.stores) {
      this.stores.clear();
      for (const { store, namespace } of this.options.stores()) {
        if (namespaceVault(namespace)) this.stores.set(store, namespace);
      }
    }
    for (const [store, ns] of this.stores) {
      if (this.stopped) return;
      try {
        await this.sweepStore(store, ns);
      } catch (err) {
        this.options.logger?.warn(
          { namespace: ns.namespace, err: (err as Error).message },
          'sweeping caller sessions failed',
        );
      }
    }
  }

  /**
   * Marks this process alive in `store` unless it did within half a sweep. The mark outlives two
   * sweeps, so one late sweep does not make this process look dead.
   */
  private async beat(store: CallerSessionStore): Promise<void> {
    const now = this.now();
    if (now - (this.beats.get(store) ?? Number.NEGATIVE_INFINITY) < this.sweepMs / 2) return;
    await store.beat(this.owner, this.sweepMs * 2 + 1000);
    this.beats.set(store, now);
  }

  private async sweepStore(store: CallerSessionStore, ns: NamespaceRequest): Promise<void> {
    await this.beat(store);
    // Local sessions first: one that opens while the store is listed is neither in `local` nor
    // taken for gone.
    const local = await this.localSessions(store);
    const records = await store.listCallers();
    const seen = new Set<string>();
    for (const record of records) {
      seen.add(record.id);
      const mine = local.get(record.id);
      if (mine?.owned) {
        if (!this.alive(record)) this.cache.drop(record.key);
        else mine.adopt(record);
      } else if (record.owner === this.owner) {
        // Opened here and no longer held here (a failed close): nobody else will revoke it.
        if (this.cache.peek(record.key) === undefined) await this.revokeOrphan(store, ns, record);
      } else if (!(await store.ownerAlive(record.owner))) {
        // Its owner is gone: revoke it, and stop borrowing it here.
        if (mine) this.cache.drop(record.key);
        await this.revokeOrphan(store, ns, record);
      } else if (mine && !this.alive(record)) {
        this.cache.drop(record.key);
      }
    }
    // Sessions whose record is gone were revoked elsewhere: stop using them here.
    for (const [id, session] of local) if (!seen.has(id)) this.cache.drop(session.record.key);
  }

  private async localSessions(store: CallerSessionStore): Promise<Map<string, CallerSession>> {
    const sessions = new Map<string, CallerSession>();
    for (const [, pending] of this.cache.list()) {
      const session = await pending.catch(() => undefined);
      if (session?.record.namespace === store.namespace) sessions.set(session.id, session);
    }
    return sessions;
  }

  /** Revokes a session its owner cannot: with this process's service identity. */
  private async revokeOrphan(
    store: CallerSessionStore,
    ns: NamespaceRequest,
    record: StoredCallerSession,
  ): Promise<void> {
    const { logger, service } = this.options;
    if (!service) {
      logger?.warn(
        { session: record.id, namespace: ns.namespace },
        'a caller session’s owner is gone and this process has no Vault service identity to revoke it',
      );
      return;
    }
    const scope = vaultScope(ns.namespace, namespaceVault(ns), this.options.defaults);
    const vault = await service(scope);
    await vault.revokeForeign(
      record.leases.map((l) => l.id),
      record.accessor,
    );
    await store.deleteCaller(record);
    logger?.info(
      { session: record.id, namespace: ns.namespace, leases: record.leases.length },
      'caller session of a departed owner revoked',
    );
  }

  // --- CallerSessionAdmin --------------------------------------------------------------------------

  async list(store: CallerSessionStore): Promise<StoredCallerSession[]> {
    const records = await store.listCallers();
    return records.filter((r) => this.alive(r));
  }

  async revoke(store: CallerSessionStore, id: string): Promise<number> {
    const ns = this.stores.get(store) ?? this.options.stores?.().find((s) => s.store === store)?.namespace;
    const record = await store.getCaller(id);
    if (!record || !ns) throw new PrismError('E_NOT_FOUND', `no caller session ${JSON.stringify(id)}`);
    this.stores.set(store, ns);
    const leases = record.leases.length;
    const mine = (await this.localSessions(store)).get(id);
    if (mine?.owned) {
      this.cache.drop(record.key);
      await this.cache.settled();
    } else if (record.owner !== this.owner && (await store.ownerAlive(record.owner))) {
      // Its owner holds the token: it revokes at its next sweep.
      await store.saveCaller({ ...record, revokeRequested: true });
      const deadline = this.now() + this.sweepMs * 2 + 5000;
      while ((await store.getCaller(id)) && this.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(200, this.sweepMs)));
      }
      if (await store.getCaller(id)) {
        throw new PrismError(
          'E_UNAVAILABLE',
          `the proxy holding caller session ${id} did not revoke it in time`,
        );
      }
    } else {
      await this.revokeOrphan(store, ns, record);
    }
    if (mine && !mine.owned) this.cache.drop(record.key);
    return leases;
  }

  /** Stops sweeping; closes every session held here (owned ones revoke their leases and token). */
  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweeper);
    await this.sweeping;
    await this.cache.close();
  }
}
