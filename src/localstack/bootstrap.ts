/**
 * Bootstrap of the Docker stack once its containers are healthy: the PostgreSQL database Prism
 * uses, Dex's configuration (rendered from templates/dex/config.yaml), and Vault: JWT auth bound
 * to Dex, one login role and policy per namespace, and the database secrets engine with exactly
 * the roles the control plane derives for the namespaces' slots, on a PostgreSQL or Redis
 * connection. Every step is idempotent, so a second `dev up` repeats it harmlessly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { assignNamespace, vaultLoginRole } from '../admin/assign.js';
import type { BackendCatalog } from '../admin/catalog.js';
import { BACKENDS } from '../config/registry.js';
import { vaultDatabaseRole, vaultIssuesCredentials } from '../config/vault-credentials.js';
import { PrismError } from '../errors.js';
import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import type { ComponentSpec, StackConfig } from './catalog.js';
import { renderContext } from './containers.js';
import { DEV_HOST } from './ports.js';

/** The issuer Dex announces; the proxy, the admin and `prismctl login` reach it from the host. */
export function dexIssuer(dex: ComponentSpec): string {
  return `http://${DEV_HOST}:${dex.ports.http}/dex`;
}

/** templates/dex/config.yaml with this stack's issuer and listen address; comments kept. */
export function renderDexConfig(packageRoot: string, config: StackConfig, dex: ComponentSpec): string {
  const doc = parseDocument(readFileSync(join(packageRoot, 'templates/dex/config.yaml'), 'utf8'));
  const ctx = renderContext(config, dex);
  doc.set('issuer', dexIssuer(dex));
  doc.setIn(['web', 'http'], `${ctx.bind}:${ctx.port.http}`);
  return doc.toString();
}

/** The stack's PostgreSQL as its development superuser. */
export interface StackPostgres {
  port: number;
  user: string;
  password?: string;
  database: string;
}

/** Runs `work` on a connection to `database` on the stack's PostgreSQL, then closes it. */
async function withPostgres<T>(
  target: StackPostgres,
  database: string,
  work: (client: import('pg').Client) => Promise<T>,
): Promise<T> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    host: DEV_HOST,
    port: target.port,
    user: target.user,
    ...(target.password !== undefined ? { password: target.password } : {}),
    database,
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates `database` when it does not exist (the official image does it; a plain initdb does not). */
export function ensurePostgresDatabase(target: StackPostgres): Promise<boolean> {
  return withPostgres(target, 'postgres', async (client) => {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [target.database]);
    if (found.rowCount) return false;
    await client.query(`CREATE DATABASE ${quoteIdent(target.database)}`);
    return true;
  });
}

/**
 * The NOLOGIN role Vault's leased roles join and act as (`SET role`), so what one lease creates
 * (the driver's tables) is owned by this role: every other lease can use it, and it outlives the
 * lease that created it (revocation reassigns ownership before dropping the role).
 */
export const SESSION_OWNER_ROLE = 'prism_owner';

/** Creates SESSION_OWNER_ROLE when missing and lets it create in `public` of the database. */
export function ensureSessionOwner(target: StackPostgres): Promise<void> {
  return withPostgres(target, target.database, async (client) => {
    const found = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [SESSION_OWNER_ROLE]);
    if (!found.rowCount) await client.query(`CREATE ROLE ${quoteIdent(SESSION_OWNER_ROLE)} NOLOGIN`);
    await client.query(`GRANT ALL ON SCHEMA public TO ${quoteIdent(SESSION_OWNER_ROLE)}`);
  });
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A database role of Vault's database secrets engine and the backend whose users it creates. */
export interface VaultDatabaseRole {
  name: string;
  /** postgres or redis */
  backend: string;
}

/** What Vault must hold for one Vault-enabled namespace. */
export interface VaultNamespace {
  namespace: string;
  /** The JWT login role, also the name of its policy. */
  loginRole: string;
  /** Audiences the namespace accepts; Vault binds the login role to them. */
  audiences: string[];
  /** Every role its slots lease from, as the control plane assigns them. */
  databaseRoles: VaultDatabaseRole[];
}

/**
 * The Vault roles of a namespace, taken from the control plane's own assignment (the same
 * function and catalog `namespace apply` uses), so the names cannot drift: every slot reference
 * `vault://database/creds/<role>`, derived or explicit. Undefined when the namespace has no Vault.
 */
export function vaultNamespace(ns: NamespaceRequest, catalog: BackendCatalog): VaultNamespace | undefined {
  if (!ns.auth?.vault?.enabled) return undefined;
  const roles = new Map<string, string>();
  for (const pattern of assignNamespace(ns, catalog).patterns) {
    for (const slot of pattern.slots) {
      const role = vaultDatabaseRole(slot.credentialRef);
      if (role !== undefined && vaultIssuesCredentials(slot.backend)) roles.set(role, slot.backend);
    }
  }
  return {
    namespace: ns.namespace,
    loginRole: vaultLoginRole(ns),
    audiences: [...ns.auth.audiences],
    databaseRoles: [...roles].map(([name, backend]) => ({ name, backend })),
  };
}

/**
 * The Vault-enabled namespaces among `loaded` that a stack running `backends` can serve, each with
 * its roles. The catalog holds one instance of each running backend, as the stack's admin is given:
 * which backends exist is all that derivation depends on.
 */
export function vaultNamespaces(
  loaded: readonly NamespaceRequest[],
  backends: Iterable<string>,
): VaultNamespace[] {
  const running = new Set([...backends].filter((b) => BACKENDS[b] !== undefined));
  const catalog: BackendCatalog = Object.fromEntries(
    [...running].map((backend) => [backend, [{ name: backend, backend, endpoint: '' }]]),
  );
  return loaded.flatMap((ns) => {
    const bound = ns.patterns.flatMap((p) => Object.values(p.slots).map((s) => s.backend));
    if (bound.some((b) => b !== '' && !running.has(b))) return [];
    return vaultNamespace(ns, catalog) ?? [];
  });
}

/**
 * ACL rules of a namespace's leased Redis users: its keys (the keyvalue driver stores
 * `<namespace>:<key>`, the Streams queue `prism/stream:<namespace>:<topic>`), its pub/sub channels
 * (`prism:<namespace>:<topic>`), every command but the dangerous ones (FLUSHALL, KEYS, CONFIG,
 * ACL...), and INFO, which ioredis sends when it connects.
 */
export function redisAclRules(namespace: string): string[] {
  return [
    `~${namespace}:*`,
    `~prism/stream:${namespace}:*`,
    `&prism:${namespace}:*`,
    '+@all',
    '-@dangerous',
    '+info',
  ];
}

export interface VaultBootstrap {
  /** http://127.0.0.1:<port> */
  address: string;
  rootToken: string;
  /** The issuer tokens carry (Dex as seen from the host). */
  issuer: string;
  /** Where Vault fetches Dex's keys (Dex as seen from the Vault container). */
  jwksUrl: string;
  /** Bound to a login role whose namespaces list no audience. */
  audience: string;
  /** PostgreSQL as seen from the Vault container, as a user that may create roles. */
  postgres?: { host: string; port: number; database: string; user: string; password: string };
  /**
   * Redis as seen from the Vault container, as a user that may run ACL SETUSER/DELUSER. Without
   * a user, `default` with a placeholder password: a Redis without a password accepts any.
   */
  redis?: { host: string; port: number; user?: string; password?: string };
  /** The Vault-enabled namespaces the stack serves (see vaultNamespace). */
  namespaces: VaultNamespace[];
  /** Where JWT auth is mounted; `jwt` unless given (the proxy's default `--vault-auth-mount`). */
  authMount?: string;
  /** Connections are `<prefix>-postgres` and `<prefix>-redis`; `prism` unless given. */
  connectionPrefix?: string;
}

const SESSION_PATHS = `path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
`;

/** What a session logged in with `loginRole` may do: lease its namespaces' roles, renew, revoke. */
export function sessionPolicy(databaseRoles: readonly string[]): string {
  const creds = [...databaseRoles]
    .sort()
    .map((role) => `path "database/creds/${role}" { capabilities = ["read"] }\n`)
    .join('');
  return `# Written by prismctl dev up: what a Prism session may do with its own token.\n${creds}${SESSION_PATHS}`;
}

/**
 * Leased PostgreSQL roles join SESSION_OWNER_ROLE and act as it. The connection's user takes each
 * one (GRANT ... TO CURRENT_USER) so that revocation may reassign and drop what it owns even when
 * that user has CREATEROLE rather than superuser.
 */
export const POSTGRES_CREATION = [
  `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE ${SESSION_OWNER_ROLE};`,
  `ALTER ROLE "{{name}}" SET role = ${SESSION_OWNER_ROLE};`,
  `GRANT "{{name}}" TO CURRENT_USER;`,
];
export const POSTGRES_REVOCATION = [
  `REASSIGN OWNED BY "{{name}}" TO ${SESSION_OWNER_ROLE};`,
  `DROP OWNED BY "{{name}}";`,
  `DROP ROLE IF EXISTS "{{name}}";`,
];

/** The Vault writes, in order; each names the step in its error. Returns the steps done. */
export async function bootstrapVault(b: VaultBootstrap): Promise<string[]> {
  const steps: string[] = [];
  const mount = b.authMount ?? 'jwt';
  const prefix = b.connectionPrefix ?? 'prism';
  const call = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    let res: Response;
    try {
      res = await fetch(`${b.address}/v1/${path}`, {
        method,
        headers: { 'X-Vault-Token': b.rootToken, 'Content-Type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new PrismError(
        'E_UNAVAILABLE',
        `Vault bootstrap: ${method} ${path} failed: ${(err as Error).message}`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      const errors = (() => {
        try {
          return ((JSON.parse(text) as { errors?: string[] }).errors ?? []).join('; ');
        } catch {
          return text.slice(0, 200);
        }
      })();
      throw new PrismError(
        'E_UNAVAILABLE',
        `Vault bootstrap: ${method} ${path} answered ${res.status}: ${errors}`,
      );
    }
    steps.push(`${method} ${path}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };

  // Checked before anything is written: a role whose backend has no connection cannot be leased.
  const byBackend = new Map<string, Map<string, string>>(); // backend → role → namespace
  for (const ns of b.namespaces) {
    for (const role of ns.databaseRoles) {
      if (!byBackend.has(role.backend)) byBackend.set(role.backend, new Map());
      byBackend.get(role.backend)!.set(role.name, ns.namespace);
    }
  }
  const connections: Record<string, unknown> = {
    postgres: b.postgres && {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${b.postgres.host}:${b.postgres.port}/${b.postgres.database}?sslmode=disable`,
      username: b.postgres.user,
      password: b.postgres.password,
    },
    redis: b.redis && {
      plugin_name: 'redis-database-plugin',
      host: b.redis.host,
      port: b.redis.port,
      username: b.redis.user ?? 'default',
      password: b.redis.password || 'no-password-set',
    },
  };
  for (const [backend, roles] of byBackend) {
    if (!connections[backend]) {
      const [role, namespace] = [...roles][0]!;
      throw new PrismError(
        'E_USAGE',
        `Vault bootstrap: namespace ${namespace} leases ${backend} users (role ${role}), and the stack gave Vault no ${backend} to create them in`,
        { hint: `add ${backend} to the stack's components` },
      );
    }
  }

  const auths = await call('GET', 'sys/auth');
  const authMounts = (auths.data as Record<string, unknown> | undefined) ?? auths;
  if (!(`${mount}/` in authMounts)) await call('POST', `sys/auth/${mount}`, { type: 'jwt' });
  await call('POST', `auth/${mount}/config`, { jwks_url: b.jwksUrl, bound_issuer: b.issuer });

  // Namespaces may share a login role: its policy and audiences are the union of theirs.
  const logins = new Map<string, { audiences: Set<string>; roles: Set<string> }>();
  for (const ns of b.namespaces) {
    const login = logins.get(ns.loginRole) ?? { audiences: new Set(), roles: new Set() };
    for (const audience of ns.audiences) login.audiences.add(audience);
    for (const role of ns.databaseRoles) login.roles.add(role.name);
    logins.set(ns.loginRole, login);
  }
  for (const [loginRole, login] of logins) {
    await call('PUT', `sys/policies/acl/${loginRole}`, { policy: sessionPolicy([...login.roles]) });
    // No groups_claim and no bound claims: Prism's `access` decides who may call, and a token it
    // admits (a `user:` grant, a token without `groups`) must not be refused here.
    await call('POST', `auth/${mount}/role/${loginRole}`, {
      role_type: 'jwt',
      user_claim: 'sub',
      bound_audiences: login.audiences.size > 0 ? [...login.audiences].sort() : [b.audience],
      token_policies: [loginRole],
      token_ttl: '1h',
    });
  }

  if (!b.postgres && !b.redis) return steps;
  const mounts = await call('GET', 'sys/mounts');
  const secretMounts = (mounts.data as Record<string, unknown> | undefined) ?? mounts;
  if (!('database/' in secretMounts)) await call('POST', 'sys/mounts/database', { type: 'database' });
  for (const backend of ['postgres', 'redis']) {
    const connection = connections[backend];
    if (!connection) continue;
    const roles = [...(byBackend.get(backend)?.keys() ?? [])].sort();
    const db = `${prefix}-${backend}`;
    await call('POST', `database/config/${db}`, { ...(connection as object), allowed_roles: roles });
    for (const role of roles) {
      await call(
        'POST',
        `database/roles/${role}`,
        backend === 'postgres'
          ? {
              db_name: db,
              creation_statements: POSTGRES_CREATION,
              revocation_statements: POSTGRES_REVOCATION,
              default_ttl: '1h',
              max_ttl: '24h',
            }
          : {
              db_name: db,
              creation_statements: [JSON.stringify(redisAclRules(byBackend.get(backend)!.get(role)!))],
              default_ttl: '1h',
              max_ttl: '24h',
            },
      );
    }
  }
  return steps;
}
