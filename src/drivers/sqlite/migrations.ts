import type Database from 'better-sqlite3';

/** A numbered schema change; never edited once released, only appended. */
export interface Migration {
  readonly version: number;
  readonly sql: string;
}

/**
 * Applies the missing migrations in order, recording each in `table`, in one immediate
 * transaction (so two processes opening the same file do not both apply one).
 */
export function runMigrations(db: Database.Database, table: string, migrations: readonly Migration[]): void {
  db.transaction(() => {
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${table} (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)`,
    );
    const applied = new Set(db.prepare(`SELECT version FROM ${table}`).pluck().all() as number[]);
    const record = db.prepare(`INSERT INTO ${table} (version, applied_at_ms) VALUES (?, ?)`);
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql);
      record.run(migration.version, Date.now());
    }
  }).immediate();
}
