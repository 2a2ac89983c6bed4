/**
 * The one transaction helper (src/drivers/postgres/transaction.ts) on the real server: COMMIT on
 * success, ROLLBACK and the error rethrown on a throw, and a connection whose ROLLBACK failed is
 * destroyed rather than returned to the pool.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { inTransaction, transactionOn } from '../../../src/drivers/postgres/transaction.js';
import { connectPostgres, describeWithService, postgresUrl, uniqueName } from '../../support/services.js';

await describeWithService('postgres', 'inTransaction on the real server', () => {
  const table = uniqueName('pgtx').replaceAll('-', '_');
  const appName = uniqueName('pgtx-pool');
  let pool: pg.Pool;
  let admin: pg.Client;

  const ids = async (): Promise<number[]> =>
    (await admin.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id);

  beforeAll(async () => {
    admin = await connectPostgres();
    await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    pool = new pg.Pool({ connectionString: postgresUrl(), application_name: appName, max: 2 });
    pool.on('error', () => undefined);
  });

  afterAll(async () => {
    await pool?.end();
    await admin?.query(`DROP TABLE IF EXISTS ${table}`);
    await admin?.end();
  });

  it('commits the work and returns its result', async () => {
    const result = await inTransaction(pool, async (client) => {
      await client.query(`INSERT INTO ${table} VALUES (1), (2)`);
      return 'done';
    });
    expect(result).toBe('done');
    expect(await ids()).toEqual([1, 2]);
    expect(pool.idleCount).toBe(pool.totalCount);
  });

  it('rolls back every statement of the work when it throws, and rethrows the same error', async () => {
    const thrown = new Error('work failed');
    await expect(
      inTransaction(pool, async (client) => {
        await client.query(`INSERT INTO ${table} VALUES (3)`);
        await client.query(`DELETE FROM ${table} WHERE id = 1`);
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(await ids()).toEqual([1, 2]);
    // The connection went back to the pool, usable.
    expect(pool.idleCount).toBe(pool.totalCount);
    expect((await pool.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('rolls back when a statement fails, with the statement error', async () => {
    await expect(
      inTransaction(pool, async (client) => {
        await client.query(`INSERT INTO ${table} VALUES (4)`);
        await client.query(`INSERT INTO ${table} VALUES (1)`);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await ids()).toEqual([1, 2]);
  });

  it('destroys a connection whose ROLLBACK failed instead of returning it to the pool', async () => {
    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const before = pool.totalCount;
    await expect(
      transactionOn(client, async (c) => {
        await c.query(`INSERT INTO ${table} VALUES (5)`);
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await c.query('SELECT 1');
      }),
    ).rejects.toBeInstanceOf(Error);
    expect(pool.totalCount).toBe(before - 1);
    expect(await ids()).toEqual([1, 2]);
  });
});
