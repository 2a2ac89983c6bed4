/**
 * A proxy whose namespaces take their slot credentials from Vault: its config files (a backends
 * catalog and, per namespace, keyvalue patterns plus a session-manager `sessions` with auth and
 * auth.vault enabled), the real test Vault configured for those namespaces by the product's own
 * bootstrap (what `prismctl dev up` writes), and the proxy itself for the single-namespace case.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import {
  bootstrapVault,
  vaultNamespaces,
  type VaultNamespace as BootstrapNamespace,
} from '../../src/localstack/bootstrap.js';
import { loadNamespaceFiles } from '../../src/localstack/namespaces.js';
import { postgresEndpoint, type PostgresSandbox } from './leased-postgres.js';
import type { RealVault } from './real-vault.js';
import { startProxy, type RunningServer } from './server-process.js';
import { postgresUrl, redisUrl } from './services.js';

export interface VaultNamespace {
  name: string;
  issuer: string;
  vaultAddress: string;
  /** The Vault role the namespace logs in as; `prism-<name>` unless given. */
  vaultRole?: string;
  /** The auth mount its sessions log in at (auth.vault.auth_mount); Prism's default `jwt` unless given. */
  authMount?: string;
  team?: string;
  /** Backend of the keyvalue cache's store (postgres unless given). */
  store?: string;
  /** More keyvalue patterns, name → backend of their store, e.g. { hot: 'redis' }. */
  keyvalue?: Record<string, string>;
  /** Backend of the session-manager's store (memstore unless given). */
  sessionStore?: string;
  /** Grants besides the owning team (access.consumers), e.g. `user:carol@example.com`. */
  consumers?: Array<{ subject: string; permissions: string[] }>;
}

export function vaultNamespaceYaml(ns: VaultNamespace): string {
  const team = ns.team ?? 'commerce';
  const keyvalue = { cache: ns.store ?? 'postgres', ...ns.keyvalue };
  return [
    `namespace: ${ns.name}`,
    `team: ${team}`,
    'patterns:',
    ...Object.entries(keyvalue).map(
      ([name, backend]) => `  - { name: ${name}, type: keyvalue, slots: { store: { backend: ${backend} } } }`,
    ),
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
    ...(ns.authMount !== undefined ? [`    auth_mount: ${ns.authMount}`] : []),
    ...(ns.consumers !== undefined
      ? [
          'access:',
          `  owners: [{ team: ${team} }]`,
          '  consumers:',
          ...ns.consumers.map(
            (c) => `    - { subject: '${c.subject}', permissions: [${c.permissions.join(', ')}] }`,
          ),
        ]
      : []),
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

export interface TestVaultBootstrap {
  /** The jwt mount the namespaces' sessions log in at (write it as their auth_mount). */
  mount: string;
  /** What the bootstrap derived per namespace: login role and database roles. */
  namespaces: BootstrapNamespace[];
  /** The password of every lease (a fixed password policy on the connections). */
  password: string;
}

/** The jwt mount `bootstrapTestVault` enables: the namespaces' auth_mount, known before it runs. */
export function testVaultMount(vault: RealVault): string {
  return vault.name('jwt');
}

/**
 * Writes into the real test Vault what `prismctl dev up` writes for the namespaces of `folder`:
 * the product's own bootstrapVault (src/localstack/bootstrap.ts) on the namespaces as the product
 * loads them and with the roles its control plane derives: JWT auth bound to the issuer's keys,
 * per namespace a login role (no groups_claim, no bound claims) and a policy for exactly its
 * database roles, per slot a database role on a PostgreSQL or Redis connection whose
 * allowed_roles list them. The mount and connections get the fixture's unique names, since tests
 * share the server, and two things differ from the stack, both because the test's servers are
 * shared: leased PostgreSQL roles work in `sandbox`'s schema instead of `public`, and the
 * connections use a fixed password policy so the test knows every leased password. Everything is
 * removed by `vault.close()`, leases first.
 */
export async function bootstrapTestVault(
  vault: RealVault,
  options: { issuer: string; namespaces: string; sandbox: PostgresSandbox },
): Promise<TestVaultBootstrap> {
  const mount = testVaultMount(vault);
  const prefix = vault.name('prism');
  const discovery = (await (await fetch(`${options.issuer}/.well-known/openid-configuration`)).json()) as {
    jwks_uri: string;
  };
  const loaded = await loadNamespaceFiles([options.namespaces]);
  const namespaces = vaultNamespaces(
    loaded.map((l) => l.request),
    ['postgres', 'redis', 'memstore'],
  );
  const pg = new URL(postgresUrl());
  const redis = new URL(redisUrl());
  let steps: string[] = [];
  try {
    steps = await bootstrapVault({
      address: vault.address,
      rootToken: vault.token,
      issuer: options.issuer,
      jwksUrl: discovery.jwks_uri,
      audience: DEV_AUDIENCE,
      postgres: {
        host: pg.hostname,
        port: Number(pg.port || 5432),
        database: pg.pathname.replace(/^\//, ''),
        user: decodeURIComponent(pg.username),
        password: decodeURIComponent(pg.password),
      },
      redis: { host: redis.hostname, port: Number(redis.port || 6379) },
      namespaces,
      authMount: mount,
      connectionPrefix: prefix,
    });
  } finally {
    removeOnClose(vault, steps, mount, prefix);
  }
  const password = await vault.fixedPasswordPolicy(vault.name('fixed'));
  for (const backend of ['postgres', 'redis']) {
    await vault.api('POST', `database/config/${prefix}-${backend}`, { password_policy: vault.name('fixed') });
  }
  for (const role of namespaces.flatMap((n) => n.databaseRoles).filter((r) => r.backend === 'postgres')) {
    await vault.api('POST', `database/roles/${role.name}`, {
      db_name: `${prefix}-postgres`,
      creation_statements: options.sandbox.creation,
      revocation_statements: options.sandbox.revocation,
      default_ttl: '1h',
      max_ttl: '24h',
    });
  }
  return { mount, namespaces, password };
}

/** Undoes the bootstrap's writes on close (the shared `database/` mount stays). */
function removeOnClose(vault: RealVault, steps: string[], mount: string, prefix: string): void {
  for (const step of steps) {
    const [method, path] = step.split(' ') as [string, string];
    if (method === 'GET') continue;
    if (path === `sys/auth/${mount}` || path.startsWith('sys/policies/acl/')) {
      vault.onClose(() => vault.api('DELETE', path));
    } else if (path.startsWith(`database/config/${prefix}-`)) {
      vault.onClose(() => vault.api('DELETE', path));
    } else if (path.startsWith('database/roles/')) {
      const role = path.slice('database/roles/'.length);
      vault.onClose(async () => {
        await vault.api('PUT', `sys/leases/revoke-prefix/database/creds/${role}`).catch(() => undefined);
        await vault.api('DELETE', path);
      });
    }
  }
}

export interface VaultProxyOptions {
  dir: string;
  namespace: string;
  issuer: string;
  vaultAddress: string;
  vaultRole: string;
  /** The namespace's auth.vault.auth_mount. */
  authMount?: string;
  /** More keyvalue patterns besides `cache` on PostgreSQL, name → backend. */
  keyvalue?: Record<string, string>;
  /** Flags after the config, log level and Vault ones: the identity, --no-auth. */
  args?: string[];
  env?: Record<string, string>;
}

/**
 * Serves one namespace (keyvalue `cache` on PostgreSQL, more if given, sessions on Redis) from a
 * proxy whose own Vault settings are --vault-address and --vault-role, logging at debug.
 * PRISM_VAULT_JWT is emptied so the identity is only what `args` and `env` give.
 */
export function startVaultProxy(options: VaultProxyOptions): Promise<RunningServer> {
  const config = writeVaultProxyConfig(options.dir, { postgres: postgresEndpoint(), redis: redisUrl() }, [
    vaultProxyNamespace(options),
  ]);
  return startVaultProxyOn(config, options);
}

/** The namespace `startVaultProxy` serves, for writing its files before Vault is set up. */
export function vaultProxyNamespace(options: VaultProxyOptions): VaultNamespace {
  const { namespace, issuer, vaultAddress, vaultRole } = options;
  return {
    name: namespace,
    issuer,
    vaultAddress,
    vaultRole,
    sessionStore: 'redis',
    ...(options.authMount !== undefined ? { authMount: options.authMount } : {}),
    ...(options.keyvalue !== undefined ? { keyvalue: options.keyvalue } : {}),
  };
}

/** Starts the proxy of `startVaultProxy` on config files already written. */
export function startVaultProxyOn(
  config: ProxyConfigFiles,
  options: VaultProxyOptions,
): Promise<RunningServer> {
  return startProxy(
    config,
    [
      ...['--log-level', 'debug', '--vault-address', options.vaultAddress, '--vault-role', options.vaultRole],
      ...(options.args ?? []),
    ],
    { PRISM_VAULT_JWT: '', ...options.env },
  );
}
