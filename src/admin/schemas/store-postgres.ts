/**
 * The schema registry in the admin's PostgreSQL schema, on the namespace store's pool. A register
 * takes a transaction-scoped advisory lock on its subject, so two admins registering under one
 * subject are serialised and the second sees the first's version (SubjectChangedError).
 */
import type pg from 'pg';
import { runMigrations, type Migration } from '../../drivers/postgres/migrations.js';
import { inTransaction } from '../../drivers/postgres/transaction.js';
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

/** Numbered migrations (`{schema}`: the quoted schema name), tracked apart from the namespace store's. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE {schema}.schema_registry_schemas (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        schema_type text NOT NULL,
        schema      text NOT NULL,
        fingerprint text NOT NULL UNIQUE
      );
      CREATE TABLE {schema}.schema_registry_versions (
        subject          text NOT NULL,
        version          integer NOT NULL,
        schema_id        bigint NOT NULL REFERENCES {schema}.schema_registry_schemas (id),
        deleted          boolean NOT NULL DEFAULT false,
        registered_at_ms bigint NOT NULL,
        registered_by    text NOT NULL,
        PRIMARY KEY (subject, version)
      );
      CREATE INDEX schema_registry_versions_schema ON {schema}.schema_registry_versions (schema_id);
      CREATE TABLE {schema}.schema_registry_config (
        subject       text PRIMARY KEY,
        compatibility text NOT NULL
      );
    `,
  },
];

export class PostgresSchemaStore implements SchemaStore {
  /**
   * @param q the quoted schema name
   * @param schema the schema name, for the migration lock
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly q: string,
    private readonly schema: string,
  ) {}

  async migrate(): Promise<void> {
    await inTransaction(this.pool, (client) =>
      runMigrations(client, {
        schema: this.schema,
        quotedSchema: this.q,
        table: 'schema_registry_migrations',
        lock: 'prismctl.schema-registry.migrate',
        migrations: MIGRATIONS,
      }),
    );
  }

  async subjects(includeDeleted: boolean): Promise<string[]> {
    const { rows } = await this.pool.query<{ subject: string }>(
      `SELECT DISTINCT subject FROM ${this.q}.schema_registry_versions ${includeDeleted ? '' : 'WHERE NOT deleted'}
        ORDER BY subject`,
    );
    return rows.map((r) => r.subject);
  }

  async versions(subject: string): Promise<SubjectVersion[]> {
    const { rows } = await this.pool.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM ${this.q}.schema_registry_versions v
         JOIN ${this.q}.schema_registry_schemas s ON s.id = v.schema_id
        WHERE v.subject = $1 ORDER BY v.version`,
      [subject],
    );
    return rows.map(toVersion);
  }

  async schemaById(id: number): Promise<StoredSchema | undefined> {
    const { rows } = await this.pool.query<{
      id: string;
      schema_type: StoredSchema['schemaType'];
      schema: string;
    }>(`SELECT id, schema_type, schema FROM ${this.q}.schema_registry_schemas WHERE id = $1`, [id]);
    const row = rows[0];
    return row && { id: Number(row.id), schemaType: row.schema_type, schema: row.schema };
  }

  async usesOf(id: number): Promise<Array<{ subject: string; version: number; deleted: boolean }>> {
    const { rows } = await this.pool.query<{ subject: string; version: number; deleted: boolean }>(
      `SELECT subject, version, deleted FROM ${this.q}.schema_registry_versions WHERE schema_id = $1
        ORDER BY subject, version`,
      [id],
    );
    return rows;
  }

  async register(
    input: NewVersion,
    audit: (id: number, version: number) => AuditRecord,
  ): Promise<{ id: number; version: number }> {
    return inTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [
        `prismctl.schema-registry.${this.schema}`,
        input.subject,
      ]);
      const { rows } = await client.query<{ max: number }>(
        `SELECT COALESCE(MAX(version), 0) AS max FROM ${this.q}.schema_registry_versions WHERE subject = $1`,
        [input.subject],
      );
      const max = rows[0]?.max ?? 0;
      if (max !== input.expectedMaxVersion) throw new SubjectChangedError(input.subject);
      await client.query(
        `INSERT INTO ${this.q}.schema_registry_schemas (schema_type, schema, fingerprint) VALUES ($1, $2, $3)
           ON CONFLICT (fingerprint) DO NOTHING`,
        [input.schemaType, input.schema, input.fingerprint],
      );
      const found = await client.query<{ id: string }>(
        `SELECT id FROM ${this.q}.schema_registry_schemas WHERE fingerprint = $1`,
        [input.fingerprint],
      );
      const id = Number(found.rows[0]?.id);
      const version = max + 1;
      await client.query(
        `INSERT INTO ${this.q}.schema_registry_versions (subject, version, schema_id, deleted, registered_at_ms, registered_by)
         VALUES ($1, $2, $3, false, $4, $5)`,
        [input.subject, version, id, input.atMs, input.principal],
      );
      await this.insertAudit(client, audit(id, version));
      return { id, version };
    });
  }

  async deleteVersions(
    subject: string,
    versions: readonly number[],
    permanent: boolean,
    audit: AuditRecord,
  ): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await client.query(
        permanent
          ? `DELETE FROM ${this.q}.schema_registry_versions WHERE subject = $1 AND version = ANY($2::integer[])`
          : `UPDATE ${this.q}.schema_registry_versions SET deleted = true WHERE subject = $1 AND version = ANY($2::integer[])`,
        [subject, [...versions]],
      );
      await this.insertAudit(client, audit);
    });
  }

  async getMode(subject: string): Promise<CompatibilityMode | undefined> {
    const { rows } = await this.pool.query<{ compatibility: CompatibilityMode }>(
      `SELECT compatibility FROM ${this.q}.schema_registry_config WHERE subject = $1`,
      [subject],
    );
    return rows[0]?.compatibility;
  }

  async setMode(subject: string, mode: CompatibilityMode | undefined, audit: AuditRecord): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      if (mode === undefined)
        await client.query(`DELETE FROM ${this.q}.schema_registry_config WHERE subject = $1`, [subject]);
      else
        await client.query(
          `INSERT INTO ${this.q}.schema_registry_config (subject, compatibility) VALUES ($1, $2)
             ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility`,
          [subject, mode],
        );
      await this.insertAudit(client, audit);
    });
  }

  private async insertAudit(client: pg.PoolClient, audit: AuditRecord): Promise<void> {
    await client.query(
      `INSERT INTO ${this.q}.audit_log (namespace, action, principal, at_ms, version_before, version_after, diff, source)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      auditValues(audit),
    );
  }
}
