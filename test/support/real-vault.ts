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

/** Root-token calls against the test Vault (or, with `address`, another server of the test's own). */
export async function vaultApi<T = Record<string, unknown>>(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST',
  path: string,
  body?: unknown,
  token = vaultRootToken(),
  address = vaultAddr(),
): Promise<T> {
  // LIST is Vault's own verb; GET with list=true is its documented equivalent.
  const url = method === 'LIST' ? `${address}/v1/${path}?list=true` : `${address}/v1/${path}`;
  const res = await fetch(url, {
    method: method === 'LIST' ? 'GET' : method,
    headers: { 'x-vault-token': token, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { errors: [text.slice(0, 200)] };
  }
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
  /** token_ttl: how long the Vault token lives unless renewed. Default 1h. */
  ttl?: string;
  /** token_max_ttl: how far renewals may take it. */
  maxTtl?: string;
}

export interface KubernetesRole {
  /** bound_service_account_names */
  serviceAccounts: string[];
  /** bound_service_account_namespaces */
  namespaces: string[];
  /** The audience the token must carry; Vault asks the TokenReview for it. */
  audience?: string;
  policies?: string[];
  /** token_ttl; default 1h. */
  ttl?: string;
}

export const SESSION_POLICY = `path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
`;

/** A lease as `sys/leases/lookup` describes it. */
export interface LeaseInfo {
  id: string;
  /** Seconds left. */
  ttl: number;
  issueTime: Date;
  expireTime: Date;
  /** Undefined until the lease is first renewed. */
  lastRenewal?: Date;
}

/** A token as `auth/token/lookup-accessor` describes it (never the token itself). */
export interface TokenInfo {
  accessor: string;
  /** The login path that made it: `auth/<mount>/login`. */
  path: string;
  /** Seconds left. */
  ttl: number;
  /** Seconds the token was created with. */
  creationTtl: number;
  issueTime: Date;
  expireTime: Date;
  /** Undefined until the token is first renewed. */
  lastRenewal?: Date;
  policies: string[];
  meta: Record<string, string> | null;
}

const dateOf = (value: unknown): Date | undefined =>
  typeof value === 'string' && value !== '' ? new Date(value) : undefined;

export class RealVault {
  readonly suffix: string;
  /** The server this fixture configures: the shared test Vault unless given. */
  readonly address: string;
  private readonly rootToken: string;
  private readonly cleanups: Array<() => Promise<unknown>> = [];

  private constructor(suffix: string, address: string, rootToken: string) {
    this.suffix = suffix;
    this.address = address;
    this.rootToken = rootToken;
  }

  /**
   * A fixture on the shared test Vault, or on another server (a test's own `bao server`) given
   * its address and root token.
   */
  static async create(server: { address?: string; rootToken?: string } = {}): Promise<RealVault> {
    const vault = new RealVault(
      uniqueName('t').replace(/-/g, ''),
      server.address ?? vaultAddr(),
      server.rootToken ?? vaultRootToken(),
    );
    await vault.ensureDatabaseEngine();
    return vault;
  }

  /** The root token of this fixture's server, for product code that configures Vault itself. */
  get token(): string {
    return this.rootToken;
  }

  /** A unique name for this fixture: `<prefix>-<suffix>`. */
  name(prefix: string): string {
    return `${prefix}-${this.suffix}`;
  }

  /** A root-token call against this fixture's server. */
  api<T = Record<string, unknown>>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST',
    path: string,
    body?: unknown,
  ): Promise<T> {
    return vaultApi<T>(method, path, body, this.rootToken, this.address);
  }

  private async ensureDatabaseEngine(): Promise<void> {
    const mounts = await this.api<{ data?: Record<string, unknown> }>('GET', 'sys/mounts');
    if ('database/' in (mounts.data ?? mounts)) return;
    try {
      await this.api('POST', 'sys/mounts/database', { type: 'database' });
    } catch (err) {
      // Another test file mounted it in between.
      if (!(err instanceof VaultApiError && err.status === 400)) throw err;
    }
  }

  /** Writes an ACL policy (removed on close). */
  async policy(name: string, hcl = SESSION_POLICY): Promise<string> {
    await this.api('PUT', `sys/policies/acl/${name}`, { policy: hcl });
    this.cleanups.push(() => this.api('DELETE', `sys/policies/acl/${name}`));
    return name;
  }

  /**
   * Enables the jwt auth method at a unique mount with the given roles, bound either to an issuer
   * (its discovery document, which Vault fetches) or to fixed public keys (PEM). Returns the mount
   * path. Disabling the mount on close revokes every token it issued, and their leases.
   */
  async jwtAuth(options: {
    issuer?: string;
    /** PEM public keys that sign the JWTs (jwt_validation_pubkeys), instead of discovery. */
    publicKeys?: string[];
    roles: Record<string, JwtRole>;
    mount?: string;
  }): Promise<string> {
    const mount = options.mount ?? this.name('jwt');
    await this.api('POST', `sys/auth/${mount}`, { type: 'jwt' });
    this.cleanups.push(() => this.api('DELETE', `sys/auth/${mount}`));
    await this.api(
      'POST',
      `auth/${mount}/config`,
      options.publicKeys !== undefined
        ? {
            jwt_validation_pubkeys: options.publicKeys,
            ...(options.issuer !== undefined ? { bound_issuer: options.issuer } : {}),
          }
        : { oidc_discovery_url: options.issuer, bound_issuer: options.issuer },
    );
    const defaultPolicy = await this.policy(this.name('session'));
    for (const [role, spec] of Object.entries(options.roles)) {
      await this.api('POST', `auth/${mount}/role/${role}`, {
        role_type: 'jwt',
        user_claim: 'sub',
        bound_audiences: spec.audiences,
        ...(spec.boundClaims !== undefined ? { bound_claims: spec.boundClaims } : {}),
        ...(spec.groupsClaim !== undefined ? { groups_claim: spec.groupsClaim } : {}),
        token_policies: spec.policies ?? [defaultPolicy],
        token_ttl: spec.ttl ?? '1h',
        ...(spec.maxTtl !== undefined ? { token_max_ttl: spec.maxTtl } : {}),
      });
    }
    return mount;
  }

  /**
   * Enables the kubernetes auth method at a unique mount, pointed at a Kubernetes API server
   * (`host`, with the PEM of the CA that signed its certificate; OpenBao refuses
   * `disable_local_ca_jwt` without one), using `reviewerJwt` for its TokenReview calls and
   * checking the tokens' issuer. Returns the mount path; disabling it on close revokes its tokens.
   */
  async kubernetesAuth(options: {
    host: string;
    caPem: string;
    reviewerJwt: string;
    issuer: string;
    roles: Record<string, KubernetesRole>;
    mount?: string;
  }): Promise<string> {
    const mount = options.mount ?? this.name('kubernetes');
    await this.api('POST', `sys/auth/${mount}`, { type: 'kubernetes' });
    this.cleanups.push(() => this.api('DELETE', `sys/auth/${mount}`));
    await this.api('POST', `auth/${mount}/config`, {
      kubernetes_host: options.host,
      kubernetes_ca_cert: options.caPem,
      token_reviewer_jwt: options.reviewerJwt,
      // Not in a pod: never read /var/run/secrets/kubernetes.io/serviceaccount/{ca.crt,token}.
      disable_local_ca_jwt: true,
      issuer: options.issuer,
      disable_iss_validation: false,
    });
    const defaultPolicy = await this.policy(this.name('k8s-session'));
    for (const [role, spec] of Object.entries(options.roles)) {
      await this.api('POST', `auth/${mount}/role/${role}`, {
        bound_service_account_names: spec.serviceAccounts,
        bound_service_account_namespaces: spec.namespaces,
        ...(spec.audience !== undefined ? { audience: spec.audience } : {}),
        token_policies: spec.policies ?? [defaultPolicy],
        token_ttl: spec.ttl ?? '1h',
      });
    }
    return mount;
  }

  /**
   * A password policy (sys/policies/password) that always generates the same password, 32 times
   * `char`: a test that names it in a connection's `passwordPolicy` knows the password of every
   * lease without seeing it, to prove that it stops working after revocation. Removed on close.
   * Returns that password.
   */
  async fixedPasswordPolicy(name: string, char = 'x'): Promise<string> {
    if (!/^[a-zA-Z0-9]$/.test(char)) throw new Error('one letter or digit');
    await this.api('PUT', `sys/policies/password/${name}`, {
      policy: `length = 32\nrule "charset" {\n  charset = "${char}"\n}\n`,
    });
    this.cleanups.push(() => this.api('DELETE', `sys/policies/password/${name}`));
    return char.repeat(32);
  }

  /** A PostgreSQL connection of the database engine (removed on close). */
  async postgresConnection(
    name: string,
    options: { allowedRoles: string[]; passwordPolicy?: string },
  ): Promise<void> {
    const pg = postgresAdmin();
    await this.api('POST', `database/config/${name}`, {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/${pg.database}?sslmode=disable`,
      username: pg.user,
      password: pg.password,
      allowed_roles: options.allowedRoles,
      ...(options.passwordPolicy !== undefined ? { password_policy: options.passwordPolicy } : {}),
    });
    this.cleanups.push(() => this.api('DELETE', `database/config/${name}`));
  }

  /** A Redis connection of the database engine (redis-database-plugin; removed on close). */
  async redisConnection(
    name: string,
    options: { allowedRoles: string[]; passwordPolicy?: string },
  ): Promise<void> {
    const url = new URL(redisUrl());
    await this.api('POST', `database/config/${name}`, {
      plugin_name: 'redis-database-plugin',
      host: url.hostname,
      port: Number(url.port || 6379),
      // The test Redis runs without a password: its default user accepts any.
      username: decodeURIComponent(url.username) || 'default',
      password: decodeURIComponent(url.password) || 'unused',
      allowed_roles: options.allowedRoles,
      ...(options.passwordPolicy !== undefined ? { password_policy: options.passwordPolicy } : {}),
    });
    this.cleanups.push(() => this.api('DELETE', `database/config/${name}`));
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
    await this.api('POST', `database/roles/${name}`, {
      db_name: options.db,
      creation_statements: options.creation,
      ...(options.revocation !== undefined ? { revocation_statements: options.revocation } : {}),
      default_ttl: options.defaultTtl ?? '1h',
      max_ttl: options.maxTtl ?? '24h',
    });
    this.cleanups.push(async () => {
      await this.api('PUT', `sys/leases/revoke-prefix/database/creds/${name}`).catch(() => undefined);
      await this.api('DELETE', `database/roles/${name}`);
    });
  }

  /**
   * A PostgreSQL login role per lease, dropped on revocation; `creation` and `revocation`
   * replace the plain statements (e.g. a sandbox's, see leased-postgres.ts).
   */
  postgresRole(
    name: string,
    options: {
      db: string;
      creation?: string[];
      revocation?: string[];
      defaultTtl?: string;
      maxTtl?: string;
    },
  ): Promise<void> {
    return this.databaseRole(name, {
      db: options.db,
      creation: options.creation ?? [
        `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
      ],
      revocation: options.revocation ?? [`DROP ROLE IF EXISTS "{{name}}";`],
      ...(options.defaultTtl !== undefined ? { defaultTtl: options.defaultTtl } : {}),
      ...(options.maxTtl !== undefined ? { maxTtl: options.maxTtl } : {}),
    });
  }

  /** A Redis ACL user per lease limited to `<keyPrefix>*`. */
  redisRole(
    name: string,
    options: { db: string; keyPrefix: string; defaultTtl?: string; maxTtl?: string },
  ): Promise<void> {
    return this.databaseRole(name, {
      db: options.db,
      creation: [JSON.stringify([`~${options.keyPrefix}*`, '+@all'])],
      ...(options.defaultTtl !== undefined ? { defaultTtl: options.defaultTtl } : {}),
      ...(options.maxTtl !== undefined ? { maxTtl: options.maxTtl } : {}),
    });
  }

  /** Live leases under `database/creds/<role>` (their ids, without the prefix). */
  async leases(role: string): Promise<string[]> {
    try {
      const res = await this.api<{ data: { keys: string[] } }>(
        'LIST',
        `sys/leases/lookup/database/creds/${role}/`,
      );
      return res.data.keys;
    } catch (err) {
      if (err instanceof VaultApiError && err.status === 404) return [];
      throw err;
    }
  }

  /** Full ids (`database/creds/<role>/<id>`) of the live leases of a role. */
  async leaseIds(role: string): Promise<string[]> {
    return (await this.leases(role)).map((key) => `database/creds/${role}/${key}`);
  }

  /** One lease as Vault sees it; undefined once it is revoked or expired. */
  async lease(leaseId: string): Promise<LeaseInfo | undefined> {
    try {
      const res = await this.api<{ data: Record<string, unknown> }>('PUT', 'sys/leases/lookup', {
        lease_id: leaseId,
      });
      const d = res.data;
      return {
        id: String(d.id),
        ttl: Number(d.ttl),
        issueTime: dateOf(d.issue_time)!,
        expireTime: dateOf(d.expire_time)!,
        ...(dateOf(d.last_renewal) !== undefined ? { lastRenewal: dateOf(d.last_renewal)! } : {}),
      };
    } catch (err) {
      if (err instanceof VaultApiError && err.status === 400) return undefined;
      throw err;
    }
  }

  /** The live tokens that logins at `auth/<mount>/` issued (through the accessor list). */
  async tokens(mount: string): Promise<TokenInfo[]> {
    const list = await this.api<{ data: { keys: string[] } }>('LIST', 'auth/token/accessors/');
    const found: TokenInfo[] = [];
    for (const accessor of list.data.keys) {
      let d: Record<string, unknown>;
      try {
        d = (
          await this.api<{ data: Record<string, unknown> }>('POST', 'auth/token/lookup-accessor', {
            accessor,
          })
        ).data;
      } catch {
        continue; // revoked or expired in between
      }
      if (typeof d.path !== 'string' || !d.path.startsWith(`auth/${mount}/`)) continue;
      found.push({
        accessor,
        path: d.path,
        ttl: Number(d.ttl),
        creationTtl: Number(d.creation_ttl),
        issueTime: dateOf(d.issue_time)!,
        expireTime: dateOf(d.expire_time)!,
        ...(dateOf(d.last_renewal) !== undefined ? { lastRenewal: dateOf(d.last_renewal)! } : {}),
        policies: (d.policies as string[] | undefined) ?? [],
        meta: (d.meta as Record<string, string> | null | undefined) ?? null,
      });
    }
    return found;
  }

  /** Runs `cleanup` on close, with the fixture's own removals (newest first): for what others wrote. */
  onClose(cleanup: () => Promise<unknown>): void {
    this.cleanups.push(cleanup);
  }

  /** Removes everything this fixture made, newest first; revokes its roles' leases. */
  async close(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  }
}
