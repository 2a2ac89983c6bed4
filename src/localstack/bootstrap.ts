/**
 * Bootstrap of the Docker stack once its containers are healthy: the PostgreSQL database Prism
 * uses, Dex's configuration (rendered from templates/dex/config.yaml), and Vault (JWT auth bound
 * to Dex, the database secrets engine pointed at PostgreSQL, roles and a policy). Every step is
 * idempotent, so a second `dev up` repeats it harmlessly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { PrismError } from '../errors.js';
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

export interface VaultBootstrap {
  /** http://127.0.0.1:<port> */
  address: string;
  rootToken: string;
  /** The issuer tokens carry (Dex as seen from the host). */
  issuer: string;
  /** Where Vault fetches Dex's keys (Dex as seen from the Vault container). */
  jwksUrl: string;
  audience: string;
  /** PostgreSQL as seen from the Vault container; undefined skips the database engine. */
  postgres?: { host: string; port: number; database: string; user: string; password: string };
  /** Vault roles: each is a JWT login role and a database role of the same name. */
  roles: string[];
}

export const VAULT_POLICY = 'prism-database';

const POLICY = `# Written by prismctl dev up: what a Prism session may do with its own token.
path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
`;

/** The Vault writes, in order; each names the step in its error. Returns the steps done. */
export async function bootstrapVault(b: VaultBootstrap): Promise<string[]> {
  const steps: string[] = [];
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

  const auths = await call('GET', 'sys/auth');
  const authMounts = (auths.data as Record<string, unknown> | undefined) ?? auths;
  if (!('jwt/' in authMounts)) await call('POST', 'sys/auth/jwt', { type: 'jwt' });
  await call('POST', 'auth/jwt/config', { jwks_url: b.jwksUrl, bound_issuer: b.issuer });
  await call('PUT', `sys/policies/acl/${VAULT_POLICY}`, { policy: POLICY });
  for (const role of b.roles) {
    await call('POST', `auth/jwt/role/${role}`, {
      role_type: 'jwt',
      user_claim: 'sub',
      groups_claim: 'groups',
      bound_audiences: [b.audience],
      token_policies: [VAULT_POLICY],
      token_ttl: '1h',
    });
  }
  if (b.postgres) {
    const mounts = await call('GET', 'sys/mounts');
    const secretMounts = (mounts.data as Record<string, unknown> | undefined) ?? mounts;
    if (!('database/' in secretMounts)) await call('POST', 'sys/mounts/database', { type: 'database' });
    const pg = b.postgres;
    await call('POST', 'database/config/prism-postgres', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/${pg.database}?sslmode=disable`,
      username: pg.user,
      password: pg.password,
      allowed_roles: b.roles,
    });
    for (const role of b.roles) {
      await call('POST', `database/roles/${role}`, {
        db_name: 'prism-postgres',
        creation_statements: [
          `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE ${SESSION_OWNER_ROLE};`,
          `ALTER ROLE "{{name}}" SET role = ${SESSION_OWNER_ROLE};`,
        ],
        revocation_statements: [
          `REASSIGN OWNED BY "{{name}}" TO ${SESSION_OWNER_ROLE};`,
          `DROP OWNED BY "{{name}}";`,
          `DROP ROLE IF EXISTS "{{name}}";`,
        ],
        default_ttl: '1h',
        max_ttl: '24h',
      });
    }
  }
  return steps;
}
