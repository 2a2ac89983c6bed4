/**
 * A CredentialResolver for `vault://database/creds/<role>` references, backed by one Vault
 * session for the life of the process (service identity). The session opens on the first Vault
 * reference; a failed login is not cached, so the next slot start tries again. `close()` revokes
 * every lease and the token. `${ENV}` references go to envCredentials; nothing falls back to
 * static credentials when Vault is down.
 */
import { Flags } from '@oclif/core';
import { PrismError } from '../errors.js';
import type { CredentialResolver } from '../runners/slots.js';
import { envCredentials } from './env-credentials.js';
import { VaultClient } from './vault-client.js';
import { VaultSession, serviceIdentity, type SessionLogger } from './vault-sessions.js';

const DATABASE_CREDS = /^vault:\/\/database\/creds\/([A-Za-z0-9_.-]+)$/;

export interface VaultSettings {
  address: string;
  /** Default jwt. */
  mount?: string;
  role: string;
  jwtFile?: string;
  caFile?: string;
}

export interface VaultCredentials {
  resolve: CredentialResolver;
  /** Revokes the session's leases and token; idempotent. */
  close(): Promise<void>;
}

export function vaultCredentials(
  settings: VaultSettings,
  options: { logger?: SessionLogger; env?: NodeJS.ProcessEnv } = {},
): VaultCredentials {
  const client = new VaultClient({
    address: settings.address,
    ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}),
  });
  let session: Promise<VaultSession> | undefined;
  let closed = false;

  const open = (): Promise<VaultSession> => {
    if (closed) return Promise.reject(new PrismError('E_UNAVAILABLE', 'the Vault session is closed'));
    session ??= (async () => {
      const identity = serviceIdentity({
        ...(settings.jwtFile !== undefined ? { jwtFile: settings.jwtFile } : {}),
        ...(options.env !== undefined ? { env: options.env } : {}),
      });
      options.logger?.info({ identity: identity.source }, 'vault service identity');
      return VaultSession.open({
        client,
        mount: settings.mount ?? 'jwt',
        role: settings.role,
        identity,
        ...(options.logger !== undefined ? { logger: options.logger } : {}),
      });
    })();
    const pending = session;
    pending.catch(() => {
      if (session === pending) session = undefined;
    });
    return pending;
  };

  const resolve: CredentialResolver = async (ref, slot) => {
    if (!ref.startsWith('vault://')) return envCredentials(ref, slot);
    const match = DATABASE_CREDS.exec(ref);
    if (!match) {
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `${slot.namespace}/${slot.pattern}: slot ${slot.slot} names ${ref}; only vault://database/creds/<role> is supported`,
      );
    }
    const creds = await (await open()).databaseCredentials(match[1]!);
    return { username: creds.username, password: creds.password };
  };

  return {
    resolve,
    async close() {
      closed = true;
      const pending = session;
      session = undefined;
      if (pending === undefined) return;
      let opened: VaultSession;
      try {
        opened = await pending;
      } catch {
        return;
      }
      await opened.close();
    },
  };
}

/** Flags of `proxy serve` and `runner serve` that configure Vault (both or neither use it). */
export const vaultFlags = {
  'vault-address': Flags.string({
    description: 'Vault address; slots with vault:// credentials get per-session leases from it',
    helpGroup: 'VAULT',
  }),
  'vault-auth-mount': Flags.string({
    description: 'Vault auth mount to log in with (jwt or kubernetes)',
    default: 'jwt',
    helpGroup: 'VAULT',
  }),
  'vault-role': Flags.string({ description: 'Vault role to log in as', helpGroup: 'VAULT' }),
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

/** Vault settings from the flags above; undefined when --vault-address is not given. */
export function vaultSettingsFromFlags(flags: {
  'vault-address'?: string;
  'vault-auth-mount': string;
  'vault-role'?: string;
  'vault-jwt-file'?: string;
  'vault-ca-file'?: string;
}): VaultSettings | undefined {
  const address = flags['vault-address'];
  if (address === undefined) return undefined;
  const role = flags['vault-role'];
  if (role === undefined || role === '') {
    throw new PrismError('E_USAGE', '--vault-address needs --vault-role, the Vault role to log in as');
  }
  return {
    address,
    role,
    mount: flags['vault-auth-mount'],
    ...(flags['vault-jwt-file'] !== undefined ? { jwtFile: flags['vault-jwt-file'] } : {}),
    ...(flags['vault-ca-file'] !== undefined ? { caFile: flags['vault-ca-file'] } : {}),
  };
}
