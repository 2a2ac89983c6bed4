import type pg from 'pg';

/**
 * Runs `work` between BEGIN and COMMIT on one pooled connection, rolling back on any error. A
 * failure to get a connection is thrown as it is.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return transactionOn(await pool.connect(), work);
}

/**
 * The same on a connection already checked out of the pool, which it releases when done: a
 * connection whose ROLLBACK failed too is destroyed rather than handed out again. A connection
 * the server ends between two statements emits 'error', which would crash the process without a
 * listener (the pool listens only while the connection is idle); the next statement reports it.
 */
export async function transactionOn<T>(
  client: pg.PoolClient,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  let broken = false;
  const ignore = (): void => undefined;
  client.on('error', ignore);
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
    client.off('error', ignore);
    client.release(broken);
  }
}
