/**
 * Where a Docker stack's namespaces find their identity provider and Vault, as the admin, the
 * proxy and `prismctl login` reach them from the host: the issuer is Dex's, or dev.yaml's
 * `issuer:` when you bring your own; Vault is the stack's Vault container.
 */
import type { StackConfig } from './catalog.js';
import { DEV_HOST } from './ports.js';

export interface StackEndpoints {
  /** The OpenID issuer the stack trusts; undefined when it runs no Dex and names no issuer. */
  issuer?: string;
  /** The stack's Vault; undefined when it runs none. */
  vault?: string;
}

/** Dex's issuer on a host port (templates/dex/config.yaml serves it under /dex). */
export function dexIssuerAt(port: number): string {
  return `http://${DEV_HOST}:${port}/dex`;
}

export function vaultAddressAt(port: number): string {
  return `http://${DEV_HOST}:${port}`;
}

/** This stack's issuer and Vault, with its ports and its `issuer:`. */
export function stackEndpoints(config: StackConfig): StackEndpoints {
  const port = (component: string, name: string) =>
    config.components.find((c) => c.name === component)?.ports[name];
  const dex = port('dex', 'http');
  const vault = port('vault', 'api');
  const issuer = config.issuer ?? (dex !== undefined ? dexIssuerAt(dex) : undefined);
  return {
    ...(issuer !== undefined ? { issuer } : {}),
    ...(vault !== undefined ? { vault: vaultAddressAt(vault) } : {}),
  };
}

/**
 * The issuer and Vault of the stack templates/dev/components.yaml describes, unchanged: what
 * namespaces written for the local stack name (examples/namespaces/).
 */
export function catalogEndpoints(config: StackConfig): Required<StackEndpoints> {
  return {
    issuer: dexIssuerAt(config.catalogPorts.dex?.http ?? 5556),
    vault: vaultAddressAt(config.catalogPorts.vault?.api ?? 8200),
  };
}
