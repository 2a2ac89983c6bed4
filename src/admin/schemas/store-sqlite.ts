/**
 * The schema registry in the admin's SQLite file, on the namespace store's connection: each write
 * is one `BEGIN IMMEDIATE` transaction with its audit row, so the version read for the
 * compare-and-set cannot change before the write.
 */
import type Database from 'better-sqlite3';
import { runMigrations, type Migration } from '../../drivers/sqlite/migrations.js';
import type { AuditRecord } from '../store.js';
import type { CompatibilityMode } from './modes.js';
import {
  SubjectChangedError,
  type NewVersion,
  type SchemaStore,
  type StoredSchema,
  type SubjectVersion,
} from './store.js';
import { auditValues, toVersion, VERSION_COLUMNS, type VersionRow } from './store-rows.js';

/** Numbered migrations of the registry's tables, tracked apart from the namespace store's. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE schema_registry_schemas (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        schema_type TEXT NOT NULL,
        schema      TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE
      );
      CREATE TABLE schema_registry_versions (
        subject          TEXT NOT NULL,
        version          INTEGER NOT NULL,
        schema_id        INTEGER NOT NULL REFERENCES schema_registry_schemas (id),
        deleted          INTEGER NOT NULL DEFAULT 0,
        registered_at_ms INTEGER NOT NULL,
        registered_by    TEXT NOT NULL,
        PRIMARY KEY (subject, version)
      );
      CREATE INDEX schema_registry_versions_schema ON schema_registry_versions (schema_id);
      CREATE TABLE schema_registry_config (
        subject       TEXT PRIMARY KEY,
        compatibility TEXT NOT NULL
      );
    `,
  },
];

const INSERT_AUDIT = `INSERT INTO audit_log (namespace, action, principal, at_ms, version_before, version_after, diff, source)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;

export class SqliteSchemaStore implements SchemaStore {
  constructor(private readonly db: Database.Database) {}

  async migrate(): Promise<void> {
    runMigrations(this.db, 'schema_registry_migrations', MIGRATIONS);
  }

  async subjects(includeDeleted: boolean): Promise<string[]> {
    return this.db
      .prepare(
        `SELECT DISTINCT subject FROM schema_registry_versions ${includeDeleted ? '' : 'WHERE deleted = 0'} ORDER BY subject`,
      )
      .pluck()
      .all() as string[];
  }

  async versions(subject: string): Promise<SubjectVersion[]> {
    return (
      this.db
        .prepare(
          `SELECT ${VERSION_COLUMNS} FROM schema_registry_versions v JOIN schema_registry_schemas s ON s.id = v.schema_id
            WHERE v.subject = ? ORDER BY v.version`,
        )
        .all(subject) as VersionRow[]
    ).map(toVersion);
  }

  async schemaById(id: number): Promise<StoredSchema | undefined> {
    const row = this.db
      .prepare('SELECT id, schema_type, schema FROM schema_registry_schemas WHERE id = ?')
      .get(id) as { id: number; schema_type: StoredSchema['schemaType']; schema: string } | undefined;
    return row && { id: row.id, schemaType: row.schema_type, schema: row.schema };
  }

  async usesOf(id: number): Promise<Array<{ subject: string; version: number; deleted: boolean }>> {
    const rows = this.db
      .prepare(
        'SELECT subject, version, deleted FROM schema_registry_versions WHERE schema_id = ? ORDER BY subject, version',
      )
      .all(id) as Array<{ subject: string; version: number; deleted: number }>;
    return rows.map((r) => ({ subject: r.subject, version: r.version, deleted: r.deleted === 1 }));
  }

  async register(
    input: NewVersion,
    audit: (id: number, version: number) => AuditRecord,
  ): Promise<{ id: number; version: number }> {
    return this.db
      .transaction(() => {
        const max = this.db
          .prepare('SELECT COALESCE(MAX(version), 0) FROM schema_registry_versions WHERE subject = ?')
          .pluck()
          .get(input.subject) as number;
        if (max !== input.expectedMaxVersion) throw new SubjectChangedError(input.subject);
        this.db
          .prepare(
            'INSERT INTO schema_registry_schemas (schema_type, schema, fingerprint) VALUES (?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING',
          )
          .run(input.schemaType, input.schema, input.fingerprint);
        const id = this.db
          .prepare('SELECT id FROM schema_registry_schemas WHERE fingerprint = ?')
          .pluck()
          .get(input.fingerprint) as number;
        const version = max + 1;
        this.db
          .prepare(
            `INSERT INTO schema_registry_versions (subject, version, schema_id, deleted, registered_at_ms, registered_by)
             VALUES (?, ?, ?, 0, ?, ?)`,
          )
          .run(input.subject, version, id, input.atMs, input.principal);
        this.db.prepare(INSERT_AUDIT).run(...auditValues(audit(id, version)));
        return { id, version };
      })
      .immediate();
  }

  async deleteVersions(
    subject: string,
    versions: readonly number[],
    permanent: boolean,
    audit: AuditRecord,
  ): Promise<void> {
    this.db
      .transaction(() => {
        const statement = this.db.prepare(
          permanent
            ? 'DELETE FROM schema_registry_versions WHERE subject = ? AND version = ?'
            : 'UPDATE schema_registry_versions SET deleted = 1 WHERE subject = ? AND version = ?',
        );
        for (const version of versions) statement.run(subject, version);
        this.db.prepare(INSERT_AUDIT).run(...auditValues(audit));
      })
      .immediate();
  }

  async getMode(subject: string): Promise<CompatibilityMode | undefined> {
    return this.db
      .prepare('SELECT compatibility FROM schema_registry_config WHERE subject = ?')
      .pluck()
      .get(subject) as CompatibilityMode | undefined;
  }

  async setMode(subject: string, mode: CompatibilityMode | undefined, audit: AuditRecord): Promise<void> {
    this.db
      .transaction(() => {
        if (mode === undefined)
          this.db.prepare('DELETE FROM schema_registry_config WHERE subject = ?').run(subject);
        else
          this.db
            .prepare(
              `INSERT INTO schema_registry_config (subject, compatibility) VALUES (?, ?)
                 ON CONFLICT (subject) DO UPDATE SET compatibility = excluded.compatibility`,
            )
            .run(subject, mode);
        this.db.prepare(INSERT_AUDIT).run(...auditValues(audit));
      })
      .immediate();
  }
}
