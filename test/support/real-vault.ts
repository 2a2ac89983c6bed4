/**
 * The real Vault of the tests: OpenBao in dev mode, started by `scripts/test-services.sh up vault`
 * (PRISM_TEST_VAULT_ADDR, PRISM_TEST_VAULT_TOKEN). This file only configures it, with the root
 * token, through Vault's documented HTTP API; what the product does against Vault goes through
 * src/auth/vault-client.ts like in production.
 *
 * Tests share one server, so every fixture names its own mounts, connections and roles with a
 * unique suffix and removes them in `close()`. The database secrets engine is mounted once at
 * `database/` (the path Prism's references name) and shared; connection and role names keep tests
 * apart.
 *
 *   const vault = await RealVault.create();            // inside a test or beforeAll
 *   const mount = await vault.jwtAuth({ issuer: idp.issuer, roles: { 'prism-vt': {...} } });
 *   await vault.postgresConnection('pg-vt', { roles: ['prism-vt-*'] });
 *   await vault.postgresRole('prism-vt-cache-store', { db: 'pg-vt' });
 *   ...
 *   await vault.close();
 */
import { postgresUrl, redisUrl, uniqueName, vaultAddr, vaultRootToken } from './services.js';

export class VaultApiError extends Error {
  constructor(
    readonly status: number,
    readonly path: string,
    readonly errors: string[],
  ) {
    super(`Vault answered ${status} on ${path}: ${errors.join('; ')}`);
  }
}

/** Root-token calls against the test Vault. */
export async function vaultApi<T = Record<string, unknown>>(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST',
  path: string,
  body?: unknown,
  token = vaultRootToken(),
): Promise<T> {
  const res = await fetch(`${vaultAddr()}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': token, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok) {
    throw new VaultApiError(
      res.status,
      path,
      (parsed.errors as string[] | undefined) ?? [text.slice(0, 200)],
    );
  }
  return parsed as T;
}

/** The PostgreSQL role Vault's database engine administers with: the test user (CREATEROLE). */
function postgresAdmin(): { host: string; port: number; database: string; user: string; password: string } {
  const url = new URL(postgresUrl());
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    database: url.pathname.replace(/^\//, ''),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
}

export interface JwtRole {
  /** Audiences the token must carry. */
  audiences: string[];
  /** Vault policies of the token; default: a policy made by `policy()`. */
  policies?: string[];
  /** Claim names to exact values (bound_claims), sent as JSON as the CLI cannot. */
  boundClaims?: Record<string, string | string[]>;
  /** Sets groups_claim; a token without that claim is then refused by Vault. */
  groupsClaim?: string;
  ttl?: string;
}

export const SESSION_POLICY = `path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
`;

export class RealVault {
  readonly suffix: string;
  private readonly cleanups: Array<() => Promise<unknown>> = [];

  private constructor(suffix: string) {
    this.suffix = suffix;
  }

  static async create(): Promise<RealVault> {
    const vault = new RealVault(uniqueName('t').replace(/-/g, ''));
    await vault.ensureDatabaseEngine();
    return vault;
  }

  get address(): string {
    return vaultAddr();
  }

  /** A unique name for this fixture: `<prefix>-<suffix>`. */
  name(prefix: string): string {
    return `${prefix}-${this.suffix}`;
  }

  private async ensureDatabaseEngine(): Promise<void> {
    const mounts = await vaultApi<{ data: Record<string, unknown> }>('GET', 'sys/mounts');
    if ('database/' in (mounts.data ?? mounts)) return;
    try {
      await vaultApi('POST', 'sys/mounts/database', { type: 'database' });
    } catch (err) {
      // Another test file mounted it in between.
      if (!(err instanceof VaultApiError && err.status === 400)) throw err;
    }
  }

  /** Writes an ACL policy (removed on close). */
  async policy(name: string, hcl = SESSION_POLICY): Promise<string> {
    await vaultApi('PUT', `sys/policies/acl/${name}`, { policy: hcl });
    this.cleanups.push(() => vaultApi('DELETE', `sys/policies/acl/${name}`));
    return name;
  }

  /**
   * Enables the jwt auth method at a unique mount, bound to the issuer (its discovery document, as
   * Vault fetches it), with the given roles. Returns the mount path.
   */
  async jwtAuth(options: {
    issuer: string;
    roles: Record<string, JwtRole>;
    mount?: string;
  }): Promise<string> {
    const mount = options.mount ?? this.name('jwt');
    await vaultApi('POST', `sys/auth/${mount}`, { type: 'jwt' });
    this.cleanups.push(() => vaultApi('DELETE', `sys/auth/${mount}`));
    await vaultApi('POST', `auth/${mount}/config`, {
      oidc_discovery_url: options.issuer,
      bound_issuer: options.issuer,
    });
    const defaultPolicy = await this.policy(this.name('session'));
    for (const [role, spec] of Object.entries(options.roles)) {
      await vaultApi('POST', `auth/${mount}/role/${role}`, {
        role_type: 'jwt',
        user_claim: 'sub',
        bound_audiences: spec.audiences,
        ...(spec.boundClaims !== undefined ? { bound_claims: spec.boundClaims } : {}),
        ...(spec.groupsClaim !== undefined ? { groups_claim: spec.groupsClaim } : {}),
        token_policies: spec.policies ?? [defaultPolicy],
        token_ttl: spec.ttl ?? '1h',
      });
    }
    return mount;
  }

  /** A PostgreSQL connection of the database engine (removed on close). */
  async postgresConnection(name: string, options: { allowedRoles: string[] }): Promise<void> {
    const pg = postgresAdmin();
    await vaultApi('POST', `database/config/${name}`, {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/${pg.database}?sslmode=disable`,
      username: pg.user,
      password: pg.password,
      allowed_roles: options.allowedRoles,
    });
    this.cleanups.push(() => vaultApi('DELETE', `database/config/${name}`));
  }

  /** A Redis connection of the database engine (redis-database-plugin; removed on close). */
  async redisConnection(name: string, options: { allowedRoles: string[] }): Promise<void> {
    const url = new URL(redisUrl());
    await vaultApi('POST', `database/config/${name}`, {
      plugin_name: 'redis-database-plugin',
      host: url.hostname,
      port: Number(url.port || 6379),
      // The test Redis runs without a password: its default user accepts any.
      username: decodeURIComponent(url.username) || 'default',
      password: decodeURIComponent(url.password) || 'unused',
      allowed_roles: options.allowedRoles,
    });
    this.cleanups.push(() => vaultApi('DELETE', `database/config/${name}`));
  }

  /** A database role (removed on close, after its leases are revoked). */
  async databaseRole(
    name: string,
    options: {
      db: string;
      creation: string[];
      revocation?: string[];
      defaultTtl?: string;
      maxTtl?: string;
    },
  ): Promise<void> {
    await vaultApi('POST', `database/roles/${name}`, {
      db_name: options.db,
      creation_statements: options.creation,
      ...(options.revocation !== undefined ? { revocation_statements: options.revocation } : {}),
      default_ttl: options.defaultTtl ?? '1h',
      max_ttl: options.maxTtl ?? '24h',
    });
    this.cleanups.push(async () => {
      await vaultApi('PUT', `sys/leases/revoke-prefix/database/creds/${name}`).catch(() => undefined);
      await vaultApi('DELETE', `database/roles/${name}`);
    });
  }

  /** A PostgreSQL login role per lease, dropped on revocation. */
  postgresRole(name: string, options: { db: string; defaultTtl?: string; maxTtl?: string }): Promise<void> {
    return this.databaseRole(name, {
      db: options.db,
      creation: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
      revocation: [`DROP ROLE IF EXISTS "{{name}}";`],
      ...(options.defaultTtl !== undefined ? { defaultTtl: options.defaultTtl } : {}),
      ...(options.maxTtl !== undefined ? { maxTtl: options.maxTtl } : {}),
    });
  }

  /** A Redis ACL user per lease limited to `<keyPrefix>*`. */
  redisRole(name: string, options: { db: string; keyPrefix: string; defaultTtl?: string }): Promise<void> {
    return this.databaseRole(name, {
      db: options.db,
      creation: [JSON.stringify([`~${options.keyPrefix}*`, '+@all'])],
      ...(options.defaultTtl !== undefined ? { defaultTtl: options.defaultTtl } : {}),
    });
  }

  /** Live leases under `database/creds/<role>` (their ids, without the prefix). */
  async leases(role: string): Promise<string[]> {
    try {
      const res = await vaultApi<{ data: { keys: string[] } }>(
        'LIST',
        `sys/leases/lookup/database/creds/${role}`,
      );
      return res.data.keys;
    } catch (err) {
      if (err instanceof VaultApiError && err.status === 404) return [];
      throw err;
    }
  }

  /** Removes everything this fixture made, newest first; revokes its roles' leases. */
  async close(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  }
}
