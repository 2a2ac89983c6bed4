import type pg from 'pg';

/**
 * Pool settings for an endpoint plus resolved credentials. pg lets values parsed from a
 * connection string override explicit `user`/`password`, so the credentials are written into the
 * URL instead of passed beside it.
 */
export function poolConfig(
  endpoint: string,
  credentials?: { username: string; password: string },
): pg.PoolConfig {
  if (!credentials) return { connectionString: endpoint };
  const url = new URL(endpoint);
  url.username = encodeURIComponent(credentials.username);
  url.password = encodeURIComponent(credentials.password);
  return { connectionString: url.toString() };
}

/**
 * Runs `work` between BEGIN and COMMIT on one pooled connection, rolling back on any error. A
 * connection whose rollback also failed is destroyed rather than handed out again.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}
