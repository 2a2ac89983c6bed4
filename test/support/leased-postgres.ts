/**
 * Looking at the real PostgreSQL from outside the proxy: who a namespace's keyvalue store is
 * connected as, whether a role Vault leased still exists, and whether its credentials log in;
 * and a sandbox (schema and NOLOGIN owner) for the roles a Vault database role creates.
 */
import pg from 'pg';
import { connectPostgres, postgresUrl } from './services.js';

/** The database URL without credentials, as a backends catalog names it. */
export function postgresEndpoint(): string {
  const url = new URL(postgresUrl());
  url.username = '';
  url.password = '';
  return url.toString();
}

export interface PostgresSandbox {
  schema: string;
  /** The NOLOGIN role that owns the schema and every table made in it. */
  owner: string;
  /**
   * creation_statements for a Vault database role: a login role in the owner's group, whose
   * sessions default to the schema and act as the owner. Tables a leased role creates then belong
   * to the owner, so another leased role can use them and `DROP ROLE` at revocation succeeds.
   */
  creation: string[];
  /** revocation_statements: the leased role owns nothing, so dropping it is enough. */
  revocation: string[];
  drop(): Promise<void>;
}

/** A schema owned by a NOLOGIN group role, both named after `suffix`; `drop()` removes both. */
export async function postgresSandbox(suffix: string): Promise<PostgresSandbox> {
  const schema = `vault_${suffix}`;
  const owner = `vault_owner_${suffix}`;
  const admin = await connectPostgres();
  try {
    await admin.query(`CREATE ROLE "${owner}" NOLOGIN`);
    await admin.query(`GRANT "${owner}" TO CURRENT_USER`);
    await admin.query(`CREATE SCHEMA "${schema}" AUTHORIZATION "${owner}"`);
  } finally {
    await admin.end();
  }
  return {
    schema,
    owner,
    creation: [
      `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE "${owner}";`,
      `ALTER ROLE "{{name}}" SET search_path = "${schema}";`,
      `ALTER ROLE "{{name}}" SET role = "${owner}";`,
    ],
    revocation: [`DROP ROLE IF EXISTS "{{name}}";`],
    async drop() {
      const client = await connectPostgres();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.query(`DROP ROLE IF EXISTS "${owner}"`);
      } finally {
        await client.end();
      }
    },
  };
}

async function adminQuery<T extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<T[]> {
  const admin = await connectPostgres();
  try {
    return (await admin.query<T>(sql, params)).rows;
  } finally {
    await admin.end();
  }
}

/**
 * The users a namespace's keyvalue store has connections as (application_name
 * `prism-kv/<namespace>`), each once, sorted.
 */
export async function keyValueConnectionUsers(namespace: string): Promise<string[]> {
  const rows = await adminQuery<{ usename: string }>(
    'SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = $1 ORDER BY usename',
    [`prism-kv/${namespace}`],
  );
  return rows.map((r) => r.usename);
}

export async function postgresRoleExists(name: string): Promise<boolean> {
  return (await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).length > 0;
}

/** The role's VALID UNTIL (pg_roles.rolvaliduntil), which Vault moves on each lease renewal. */
export async function postgresRoleValidUntil(name: string): Promise<Date | undefined> {
  const rows = await adminQuery<{ until: Date | null }>(
    'SELECT rolvaliduntil AS until FROM pg_roles WHERE rolname = $1',
    [name],
  );
  return rows[0]?.until ?? undefined;
}

/** Polls until the role is gone or `timeoutMs` has passed; the caller asserts which. */
export async function waitForRoleDropped(name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await postgresRoleExists(name)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Logs in to the test database with leased credentials and answers the session's user; rejects
 * as PostgreSQL does when the role is gone or the password is wrong.
 */
export async function loginAsLeasedRole(username: string, password: string): Promise<string> {
  const url = new URL(postgresEndpoint());
  url.username = username;
  url.password = password;
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return (await client.query<{ u: string }>('SELECT session_user AS u')).rows[0]!.u;
  } finally {
    await client.end().catch(() => undefined);
  }
}
