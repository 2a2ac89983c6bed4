import { PrismError } from '../errors.js';
import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import type { NamespaceVault } from '../runners/slots.js';

/** What the namespace's `auth.vault` declares, when it enables Vault. */
export function namespaceVault(ns: NamespaceRequest): NamespaceVault | undefined {
  const vault = ns.auth?.vault;
  if (!vault?.enabled) return undefined;
  return { address: vault.address, role: vault.role, authMount: vault.authMount };
}

/** Which Vault, auth mount and login role a session uses. */
export interface VaultScope {
  address: string;
  mount: string;
  role: string;
}

/** The process's Vault flags: defaults for namespaces that do not say. */
export interface VaultDefaults {
  address?: string;
  mount?: string;
  role?: string;
  caFile?: string;
}

/**
 * A namespace's own `auth.vault` (address, role, auth_mount) wins where it says something; the
 * process flags fill the rest; the login role falls back to `prism-<namespace>`, the prefix the
 * control plane gives the namespace's database roles. E_UNAVAILABLE when no address is known:
 * backend credentials come only from Vault, never from anything static.
 */
export function vaultScope(
  namespace: string,
  declared: NamespaceVault | undefined,
  defaults: VaultDefaults,
): VaultScope {
  const address = declared?.address || defaults.address;
  if (!address) {
    throw new PrismError(
      'E_UNAVAILABLE',
      `namespace '${namespace}' takes its backend credentials from Vault and no Vault address is known`,
      {
        hint: 'set auth.vault.address in the namespace or pass --vault-address; static credentials are never used instead',
      },
    );
  }
  return {
    address,
    mount: declared?.authMount || defaults.mount || 'jwt',
    role: declared?.role || defaults.role || `prism-${namespace}`,
  };
}

/** A stable string for a scope, to key sessions by. */
export function scopeKey(scope: VaultScope): string {
  return JSON.stringify([scope.address, scope.mount, scope.role]);
}

/** `vault://database/creds/<role>` → the role; E_INVALID_ARGUMENT for any other Vault path. */
export function databaseRole(ref: string, where: string): string {
  const match = /^vault:\/\/database\/creds\/([A-Za-z0-9_.-]+)$/.exec(ref);
  if (!match) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `${where} names ${ref}; only vault://database/creds/<role> is supported`,
    );
  }
  return match[1]!;
}
