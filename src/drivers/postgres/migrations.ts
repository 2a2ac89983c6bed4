import type pg from 'pg';

/** A numbered schema change; never edited once released, only appended. `{schema}`: the quoted schema. */
export interface Migration {
  readonly version: number;
  readonly sql: string;
}

export interface MigrationSet {
  /** The schema name (for the lock) and its quoted form (in statements). */
  readonly schema: string;
  readonly quotedSchema: string;
  /** Table recording applied versions, inside the schema. */
  readonly table: string;
  /** Advisory-lock name serialising concurrent runs (several admins starting at once). */
  readonly lock: string;
  readonly migrations: readonly Migration[];
}

/** Applies the set's missing migrations in order, inside the caller's transaction. */
export async function runMigrations(client: pg.PoolClient, set: MigrationSet): Promise<void> {
  const q = set.quotedSchema;
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [set.lock, set.schema]);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${q}.${set.table} (version integer PRIMARY KEY, applied_at_ms bigint NOT NULL)`,
  );
  const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${q}.${set.table}`);
  const applied = new Set(rows.map((row) => row.version));
  for (const migration of set.migrations) {
    if (applied.has(migration.version)) continue;
    await client.query(migration.sql.replaceAll('{schema}', q));
    await client.query(`INSERT INTO ${q}.${set.table} (version, applied_at_ms) VALUES ($1, $2)`, [
      migration.version,
      Date.now(),
    ]);
  }
}
