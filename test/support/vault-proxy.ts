/**
 * A proxy whose namespaces take their slot credentials from Vault: its config files (a backends
 * catalog and, per namespace, a keyvalue `cache` plus a session-manager `sessions` with auth and
 * auth.vault enabled), and the proxy itself for the single-namespace case.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { startProxy, type RunningServer } from './server-process.js';
import { redisUrl } from './services.js';
import { postgresEndpoint } from './vault-standin.js';

export interface VaultNamespace {
  name: string;
  issuer: string;
  vaultAddress: string;
  /** The Vault role the namespace logs in as; `prism-<name>` unless given. */
  vaultRole?: string;
  team?: string;
  /** Backend of the keyvalue cache's store (postgres unless given). */
  store?: string;
  /** Backend of the session-manager's store (memstore unless given). */
  sessionStore?: string;
}

export function vaultNamespaceYaml(ns: VaultNamespace): string {
  return [
    `namespace: ${ns.name}`,
    `team: ${ns.team ?? 'commerce'}`,
    'patterns:',
    '  - name: cache',
    '    type: keyvalue',
    '    slots:',
    `      store: { backend: ${ns.store ?? 'postgres'} }`,
    '  - name: sessions',
    '    type: session-manager',
    '    slots:',
    `      store: { backend: ${ns.sessionStore ?? 'memstore'} }`,
    'auth:',
    '  enabled: true',
    `  issuer: ${ns.issuer}`,
    `  audiences: [${DEV_AUDIENCE}]`,
    '  vault:',
    '    enabled: true',
    `    address: ${ns.vaultAddress}`,
    `    role: ${ns.vaultRole ?? `prism-${ns.name}`}`,
    '',
  ].join('\n');
}

/** A backends catalog with one instance, named `test`, per backend type. */
export function backendsYaml(endpoints: Record<string, string>): string {
  const lines = Object.entries(endpoints).map(
    ([backend, endpoint]) => `  ${backend}: [{ name: test, endpoint: "${endpoint}" }]`,
  );
  return ['backends:', ...lines, ''].join('\n');
}

export interface ProxyConfigFiles {
  backends: string;
  /** The folder holding one `<name>.yaml` per namespace. */
  namespaces: string;
}

/** Writes `backends.yaml` and `namespaces/<name>.yaml` for each namespace under `dir`. */
export function writeVaultProxyConfig(
  dir: string,
  endpoints: Record<string, string>,
  namespaces: VaultNamespace[],
): ProxyConfigFiles {
  const files = { backends: join(dir, 'backends.yaml'), namespaces: join(dir, 'namespaces') };
  writeFileSync(files.backends, backendsYaml(endpoints));
  mkdirSync(files.namespaces);
  for (const ns of namespaces)
    writeFileSync(join(files.namespaces, `${ns.name}.yaml`), vaultNamespaceYaml(ns));
  return files;
}

export interface VaultProxyOptions {
  dir: string;
  namespace: string;
  issuer: string;
  vaultAddress: string;
  vaultRole: string;
  /** Flags after the config, log level and Vault ones: the identity, --no-auth. */
  args?: string[];
  env?: Record<string, string>;
}

/**
 * Serves one namespace (keyvalue store on PostgreSQL, sessions on Redis) from a proxy whose own
 * Vault settings are --vault-address and --vault-role, logging at debug. PRISM_VAULT_JWT is
 * emptied so the identity is only what `args` and `env` give.
 */
export function startVaultProxy(options: VaultProxyOptions): Promise<RunningServer> {
  const { dir, namespace, issuer, vaultAddress, vaultRole } = options;
  const config = writeVaultProxyConfig(dir, { postgres: postgresEndpoint(), redis: redisUrl() }, [
    { name: namespace, issuer, vaultAddress, vaultRole, sessionStore: 'redis' },
  ]);
  return startProxy(
    config,
    [
      ...['--log-level', 'debug', '--vault-address', vaultAddress, '--vault-role', vaultRole],
      ...(options.args ?? []),
    ],
    { PRISM_VAULT_JWT: '', ...options.env },
  );
}
