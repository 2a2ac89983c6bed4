/**
 * A CredentialResolver for `vault://database/creds/<role>` references, backed by service-identity
 * Vault sessions: one per Vault scope (address, auth mount, login role), where a namespace's own
 * `auth.vault` wins over the process flags. A session opens on its first reference; a failed
 * login is not cached, so the next slot start tries again, and a session whose token Vault no
 * longer accepts (revoked, or run out) is replaced by a new login on its next reference. Each lease is handed back with the
 * credentials (`release`), so a runner that stops revokes its own leases; `close()` revokes
 * every lease and token left. `${ENV}` references go to envCredentials; nothing falls back to
 * static credentials when Vault is down.
 */
import { Flags } from '@oclif/core';
import { PrismError } from '../errors.js';
import type { CredentialResolver } from '../runners/slots.js';
import { envCredentials } from './env-credentials.js';
import { vaultClients } from './vault-client.js';
import { databaseRole, scopeKey, vaultScope, type VaultDefaults, type VaultScope } from './vault-scope.js';
import { VaultSession, serviceIdentity, type SessionLogger } from './vault-sessions.js';

export interface VaultSettings extends VaultDefaults {
  jwtFile?: string;
}

export interface VaultCredentials {
  resolve: CredentialResolver;
  /** The service-identity session of a Vault scope, opened on first use. */
  session(scope: VaultScope): Promise<VaultSession>;
  /** Revokes every session's leases and token; idempotent. */
  close(): Promise<void>;
}

export function vaultCredentials(
  settings: VaultSettings,
  options: { logger?: SessionLogger; env?: NodeJS.ProcessEnv } = {},
): VaultCredentials {
  const clientFor = vaultClients(settings.caFile);
  const sessions = new Map<string, Promise<VaultSession>>();
  let closed = false;

  const open = (scope: VaultScope): Promise<VaultSession> => {
    if (closed) return Promise.reject(new PrismError('E_UNAVAILABLE', 'the Vault session is closed'));
    const key = scopeKey(scope);
    const existing = sessions.get(key);
    if (existing) return existing;
    const pending = (async () => {
      const identity = serviceIdentity({
        ...(settings.jwtFile !== undefined ? { jwtFile: settings.jwtFile } : {}),
        ...(options.env !== undefined ? { env: options.env } : {}),
      });
      options.logger?.info({ identity: identity.source }, 'vault service identity');
      return VaultSession.open({
        client: clientFor(scope.address),
        mount: scope.mount,
        role: scope.role,
        identity,
        ...(options.logger !== undefined ? { logger: options.logger } : {}),
      });
    })();
    sessions.set(key, pending);
    pending.catch(() => {
      if (sessions.get(key) === pending) sessions.delete(key);
    });
    return pending;
  };

  /**
   * The scope's session, logged in again when Vault no longer takes its token (revoked by an
   * operator, or run out while Vault was away): a dead session would refuse every later lease.
   */
  const sessionFor = async (scope: VaultScope): Promise<VaultSession> => {
    const key = scopeKey(scope);
    const existing = sessions.get(key);
    if (existing) {
      const session = await existing;
      if (session.usable) return session;
      if (sessions.get(key) === existing) {
        sessions.delete(key);
        options.logger?.warn(
          { vault: scope.address, role: scope.role },
          'vault session lost its token; logging in again',
        );
        // Its leases went with the token; revoking what is left may be refused, which is fine.
        void session.close().catch(() => undefined);
      }
    }
    return open(scope);
  };

  const resolve: CredentialResolver = async (ref, slot) => {
    if (!ref.startsWith('vault://')) return envCredentials(ref, slot);
    const role = databaseRole(ref, `${slot.namespace}/${slot.pattern}: slot ${slot.slot}`);
    const scope = vaultScope(slot.namespace, slot.vault, settings);
    let session = await sessionFor(scope);
    let creds;
    try {
      creds = await session.databaseCredentials(role);
    } catch (err) {
      // Refused because the token is gone (the session says so): one new login, one retry.
      if (session.usable) throw err;
      session = await sessionFor(scope);
      creds = await session.databaseCredentials(role);
    }
    return {
      username: creds.username,
      password: creds.password,
      release: () => session.revoke(creds.leaseId),
    };
  };

  return {
    resolve,
    session: sessionFor,
    async close() {
      closed = true;
      const pending = [...sessions.values()];
      sessions.clear();
      let failure: { error: unknown } | undefined;
      for (const p of pending) {
        const opened = await p.catch(() => undefined);
        await opened?.close().catch((err: unknown) => {
          failure ??= { error: err };
        });
      }
      if (failure) throw failure.error;
    },
  };
}

/** Flags of `proxy serve` and `runner serve` that configure Vault (both or neither use it). */
export const vaultFlags = {
  'vault-address': Flags.string({
    description:
      'Vault address for namespaces whose auth.vault names none; slots with vault:// credentials get per-session leases from it',
    helpGroup: 'VAULT',
  }),
  'vault-auth-mount': Flags.string({
    description:
      'Vault auth mount to log in with (jwt or kubernetes) when the namespace’s auth.vault.auth_mount is empty',
    default: 'jwt',
    helpGroup: 'VAULT',
  }),
  'vault-role': Flags.string({
    description:
      'Vault role to log in as when the namespace’s auth.vault.role is empty (default prism-<namespace>)',
    helpGroup: 'VAULT',
  }),
  'vault-jwt-file': Flags.string({
    description:
      'JWT of this service for the Vault login (default: $PRISM_VAULT_JWT, then the Kubernetes service-account token)',
    helpGroup: 'VAULT',
  }),
  'vault-ca-file': Flags.string({
    description: 'PEM CA bundle for an https Vault address',
    helpGroup: 'VAULT',
  }),
};

/**
 * Vault settings from the flags above: defaults for namespaces whose `auth.vault` does not say.
 * Without --vault-address, only namespaces that name their Vault address use Vault.
 */
export function vaultSettingsFromFlags(flags: {
  'vault-address'?: string;
  'vault-auth-mount': string;
  'vault-role'?: string;
  'vault-jwt-file'?: string;
  'vault-ca-file'?: string;
}): VaultSettings {
  return {
    ...(flags['vault-address'] ? { address: flags['vault-address'] } : {}),
    ...(flags['vault-role'] ? { role: flags['vault-role'] } : {}),
    mount: flags['vault-auth-mount'],
    ...(flags['vault-jwt-file'] !== undefined ? { jwtFile: flags['vault-jwt-file'] } : {}),
    ...(flags['vault-ca-file'] !== undefined ? { caFile: flags['vault-ca-file'] } : {}),
  };
}
