/**
 * The one PostgreSQL error classifier (src/drivers/postgres/errors.ts), fed with errors the real
 * server and the real pg client raise: an outage is `unavailable`, a server that refuses the
 * configured client is `refused`, and a failed statement is `statement`.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { classifyPostgresError, isPostgresUnavailable } from '../../../src/drivers/postgres/errors.js';
import { connectPostgres, describeWithService, postgresUrl, uniqueName } from '../../support/services.js';

/** A loopback port nothing listens on: bound once by us, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

await describeWithService('postgres', 'classifyPostgresError on errors of the real server', () => {
  const table = uniqueName('pgerr').replaceAll('-', '_');
  let admin: pg.Client;

  beforeAll(async () => {
    admin = await connectPostgres();
    await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    await admin.query(`INSERT INTO ${table} VALUES (1)`);
  });

  afterAll(async () => {
    await admin?.query(`DROP TABLE IF EXISTS ${table}`);
    await admin?.end();
  });

  it('calls a refused connection on a closed port unavailable: cannot reach the server', async () => {
    const port = await closedPort();
    const client = new pg.Client({ host: '127.0.0.1', port, connectionTimeoutMillis: 2000 });
    const err = await failure(() => client.connect());
    expect((err as { code?: string }).code).toBe('ECONNREFUSED');
    expect(classifyPostgresError(err)).toEqual({ kind: 'unavailable', reason: 'cannot reach the server' });
    expect(isPostgresUnavailable(err)).toBe(true);
  });

  it('calls a query on a backend ended by pg_terminate_backend unavailable', async () => {
    const victim = await connectPostgres();
    victim.on('error', () => undefined);
    const { rows } = await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    const err = await failure(() => victim.query('SELECT 1'));
    const { kind } = classifyPostgresError(err);
    expect(kind).toBe('unavailable');
    await victim.end().catch(() => undefined);
  });

  it('calls a pool whose sessions were terminated unavailable for calls on the ended session', async () => {
    const name = uniqueName('pgerr-pool');
    const pool = new pg.Pool({ connectionString: postgresUrl(), application_name: name, max: 1 });
    pool.on('error', () => undefined);
    const client = await pool.connect();
    // A checked-out client hears the FATAL as an 'error' event when it arrives between queries;
    // the pool's listener covers only idle clients.
    client.on('error', () => undefined);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
      name,
    ]);
    // The server's FATAL 57P01 (admin_shutdown) reaches the client as the query's error or as a
    // terminated connection, depending on timing; both are outages.
    const err = await failure(() => client.query('SELECT 1'));
    expect(isPostgresUnavailable(err)).toBe(true);
    client.release(true);
    await pool.end();
  });

  it('calls a syntax error a statement error, keeping its message', async () => {
    const err = await failure(() => admin.query('SELEC 1'));
    expect((err as { code?: string }).code).toBe('42601');
    expect(classifyPostgresError(err)).toEqual({
      kind: 'statement',
      reason: 'syntax error at or near "SELEC"',
    });
    expect(isPostgresUnavailable(err)).toBe(false);
  });

  it('calls a unique violation a statement error', async () => {
    const err = await failure(() => admin.query(`INSERT INTO ${table} VALUES (1)`));
    expect((err as { code?: string }).code).toBe('23505');
    expect(classifyPostgresError(err).kind).toBe('statement');
  });

  it('calls a connection to a database that does not exist refused', async () => {
    const url = new URL(postgresUrl());
    url.pathname = `/${uniqueName('missing').replaceAll('-', '_')}`;
    const client = new pg.Client({ connectionString: url.toString() });
    const err = await failure(() => client.connect());
    expect((err as { code?: string }).code).toBe('3D000');
    expect(classifyPostgresError(err)).toEqual({ kind: 'refused', reason: 'the database does not exist' });
    expect(isPostgresUnavailable(err)).toBe(false);
  });

  it('calls an error that is not an Error a statement error', () => {
    expect(classifyPostgresError('boom')).toEqual({ kind: 'statement', reason: 'boom' });
  });
});
