/**
 * A transit key on the real test Vault (OpenBao) and the service identities that use it, for the
 * envelope-encryption tests: a unique transit mount with key `orders`, a jwt auth mount whose
 * roles carry the policies under test, and VaultAccess (the product's vault-credentials sessions,
 * logged in with a service JWT as `proxy serve` does) for runners and proxies.
 *
 *   writer   may `update` <mount>/datakey/plaintext/orders  (producers)
 *   reader   may `update` <mount>/decrypt/orders            (consumers)
 *   stranger only Vault's default policy                  (neither)
 */
import { vaultCredentials, type VaultCredentials } from '../../src/auth/vault-credentials.js';
import type { VaultAccess } from '../../src/auth/vault-transit.js';
import { RealVault } from './real-vault.js';
import { TokenIssuer } from './token-issuer.js';

export interface TransitVault {
  vault: RealVault;
  /** The transit mount (unique per fixture); the key is `${mount}/orders`. */
  mount: string;
  key: string;
  authMount: string;
  roles: { writer: string; reader: string; stranger: string };
  /** Vault sessions of the service identity against `address` (default: the test Vault). */
  access(address?: string): VaultAccess;
  /** Rotates the transit key; returns its new latest version. */
  rotate(): Promise<number>;
  close(): Promise<void>;
}

export async function transitVault(): Promise<TransitVault> {
  const vault = await RealVault.create();
  const issuer = new TokenIssuer();
  await issuer.start();
  const mount = vault.name('transit');
  await vault.api('POST', `sys/mounts/${mount}`, { type: 'transit' });
  await vault.api('POST', `${mount}/keys/orders`, {});
  const writer = await vault.policy(
    vault.name('enc-writer'),
    `path "${mount}/datakey/plaintext/orders" { capabilities = ["update"] }\n`,
  );
  const reader = await vault.policy(
    vault.name('enc-reader'),
    `path "${mount}/decrypt/orders" { capabilities = ["update"] }\n`,
  );
  const roles = {
    writer: vault.name('prism-writer'),
    reader: vault.name('prism-reader'),
    stranger: vault.name('prism-stranger'),
  };
  const authMount = await vault.jwtAuth({
    issuer: issuer.issuer,
    roles: {
      [roles.writer]: { audiences: ['vault'], policies: [writer] },
      [roles.reader]: { audiences: ['vault'], policies: [reader] },
      [roles.stranger]: { audiences: ['vault'], policies: ['default'] },
    },
  });
  const jwt = await issuer.mint('svc:prism-proxy', {}, 'vault');
  const opened: VaultCredentials[] = [];
  return {
    vault,
    mount,
    key: `${mount}/orders`,
    authMount,
    roles,
    access(address = vault.address) {
      const credentials = vaultCredentials({ address, mount: authMount }, { env: { PRISM_VAULT_JWT: jwt } });
      opened.push(credentials);
      return { session: (scope) => credentials.session(scope), defaults: { address, mount: authMount } };
    },
    async rotate() {
      await vault.api('POST', `${mount}/keys/orders/rotate`, {});
      const info = await vault.api<{ data: { latest_version: number } }>('GET', `${mount}/keys/orders`);
      return info.data.latest_version;
    },
    async close() {
      for (const c of opened.splice(0)) await c.close().catch(() => undefined);
      await vault.api('DELETE', `sys/mounts/${mount}`).catch(() => undefined);
      await vault.close();
      await issuer.stop();
    },
  };
}
