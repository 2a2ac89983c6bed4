/**
 * Per-request sessions for keyvalue (DESIGN.md §7): each caller's verified token becomes a cached
 * session, keyed by a hash of the token, that logs in to Vault with the caller's own JWT
 * (`auth/<mount>/login`) and leases `database/creds/<role>` for the slots the caller uses. The
 * session lives until its TTL or the token's expiry, whichever is first, closes sooner when idle,
 * and at most `maxSessions` live at once. Closing a session first runs its hooks (runners close
 * the caller's connections), then revokes its leases and its Vault token. Vault down means
 * E_UNAVAILABLE; nothing falls back to static or service credentials.
 */
import { randomUUID } from 'node:crypto';
import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import type { CredentialResolver } from '../runners/slots.js';
import type { BackendSession } from '../runners/types.js';
import { SessionCache, type Closable } from './session-cache.js';
import { vaultClients } from './vault-client.js';
import { databaseRole, namespaceVault, scopeKey, vaultScope, type VaultDefaults } from './vault-scope.js';
import { VaultSession, type SessionLogger } from './vault-sessions.js';

export interface RequestSessionOptions {
  /** The process's Vault flags; a namespace's own auth.vault wins. */
  defaults: VaultDefaults;
  /** Longest session life, ms (never beyond the token's expiry). Default 15 min. */
  ttlMs?: number;
  /** A session unused this long closes, ms. Default 5 min. */
  idleMs?: number;
  /** Most live sessions; the least recently used closes first. Default 1000. */
  maxSessions?: number;
  logger?: SessionLogger;
}

export const REQUEST_SESSION_DEFAULTS = { ttlMs: 15 * 60_000, idleMs: 5 * 60_000, maxSessions: 1000 };

/** One caller's Vault session and what runners opened with it. */
class CallerVaultSession implements BackendSession, Closable {
  readonly id = randomUUID();
  private readonly hooks: Array<() => Promise<void>> = [];
  private closed = false;

  constructor(
    private readonly vault: VaultSession,
    private readonly logger?: SessionLogger,
  ) {}

  readonly credentials: CredentialResolver = async (ref, slot) => {
    const role = databaseRole(ref, `${slot.namespace}/${slot.pattern}: slot ${slot.slot}`);
    const creds = await this.vault.databaseCredentials(role);
    return {
      username: creds.username,
      password: creds.password,
      release: () => this.vault.revoke(creds.leaseId),
    };
  };

  onClose(hook: () => Promise<void>): void {
    if (this.closed) {
      void hook().catch(() => undefined);
      return;
    }
    this.hooks.push(hook);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const hook of this.hooks.splice(0).reverse()) {
      await hook().catch((err: unknown) =>
        this.logger?.warn({ err: (err as Error).message }, 'closing a caller connection failed'),
      );
    }
    await this.vault.close();
    this.logger?.info({ session: this.id }, 'caller session closed');
  }
}

export class RequestSessions {
  private readonly cache: SessionCache<CallerVaultSession>;
  private readonly clientFor: ReturnType<typeof vaultClients>;

  constructor(private readonly options: RequestSessionOptions) {
    this.clientFor = vaultClients(options.defaults.caFile);
    this.cache = new SessionCache({
      ttlMs: options.ttlMs ?? REQUEST_SESSION_DEFAULTS.ttlMs,
      idleMs: options.idleMs ?? REQUEST_SESSION_DEFAULTS.idleMs,
      maxSessions: options.maxSessions ?? REQUEST_SESSION_DEFAULTS.maxSessions,
      onCloseError: (err) =>
        options.logger?.warn({ err: (err as Error).message }, 'revoking a caller session failed'),
    });
  }

  /** Live sessions. */
  get size(): number {
    return this.cache.size;
  }

  /**
   * The caller's session for a namespace's Vault, opened on the token's first call.
   * `expiresAt`: the token's exp, seconds since the epoch.
   */
  open(token: string, expiresAt: number | undefined, ns: NamespaceRequest): Promise<BackendSession> {
    const scope = vaultScope(ns.namespace, namespaceVault(ns), this.options.defaults);
    const { logger } = this.options;
    return this.cache.get(
      scopeKey(scope),
      token,
      expiresAt !== undefined ? expiresAt * 1000 : undefined,
      async () => {
        const vault = await VaultSession.open({
          client: this.clientFor(scope.address),
          mount: scope.mount,
          role: scope.role,
          jwt: token,
          ...(logger !== undefined ? { logger } : {}),
        });
        const session = new CallerVaultSession(vault, logger);
        logger?.info({ session: session.id, namespace: ns.namespace }, 'caller session opened');
        return session;
      },
    );
  }

  /** Closes every session: connections first, then leases and tokens revoked. */
  close(): Promise<void> {
    return this.cache.close();
  }
}
