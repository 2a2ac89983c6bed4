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
