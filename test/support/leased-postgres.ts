/**
 * Looking at the real PostgreSQL from outside the proxy: who a namespace's keyvalue store is
 * connected as, whether a role Vault leased still exists, and whether its credentials log in.
 */
import pg from 'pg';
import { connectPostgres } from './services.js';
import { postgresEndpoint } from './vault-standin.js';

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
