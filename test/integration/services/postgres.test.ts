import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { connectPostgres, describeWithService, uniqueName } from '../../support/services.js';

await describeWithService('postgres', 'PostgreSQL test service', () => {
  let client: pg.Client;

  beforeAll(async () => {
    client = await connectPostgres();
  });

  afterAll(async () => {
    await client?.end();
  });

  it('round-trips rows through a temporary table', async () => {
    await client.query(
      'CREATE TEMP TABLE smoke_items (id serial PRIMARY KEY, name text NOT NULL, attrs jsonb)',
    );
    const inserted = await client.query<{ id: number }>(
      'INSERT INTO smoke_items (name, attrs) VALUES ($1, $2), ($3, $4) RETURNING id',
      ['alpha', { tier: 1 }, 'beta', { tier: 2 }],
    );
    expect(inserted.rowCount).toBe(2);

    const { rows } = await client.query<{ name: string; tier: number }>(
      "SELECT name, (attrs->>'tier')::int AS tier FROM smoke_items ORDER BY id",
    );
    expect(rows).toEqual([
      { name: 'alpha', tier: 1 },
      { name: 'beta', tier: 2 },
    ]);
  });

  it('connects as a role that owns the test database and may create roles', async () => {
    const { rows } = await client.query<{ db: string; owner: string; createrole: boolean }>(
      `SELECT current_database() AS db, pg_get_userbyid(d.datdba) AS owner, r.rolcreaterole AS createrole
         FROM pg_database d, pg_roles r
        WHERE d.datname = current_database() AND r.rolname = current_user`,
    );
    expect(rows[0]?.owner).toBe((await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u);
    expect(rows[0]?.createrole).toBe(true);

    const role = uniqueName('prism_smoke_role').replace(/-/g, '_');
    await client.query(`CREATE ROLE ${role} NOLOGIN`);
    try {
      const found = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      expect(found.rowCount).toBe(1);
    } finally {
      await client.query(`DROP ROLE ${role}`);
    }
    const gone = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    expect(gone.rowCount).toBe(0);
  });
});
