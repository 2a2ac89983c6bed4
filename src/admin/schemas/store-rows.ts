import type { AuditRecord } from '../store.js';
import type { SchemaType } from './modes.js';
import type { SubjectVersion } from './store.js';

/** A version row joined with its schema, as both stores read it (pg: BIGINT as string, boolean). */
export interface VersionRow {
  subject: string;
  version: number;
  schema_id: number | string;
  schema_type: string;
  schema: string;
  deleted: number | boolean;
  registered_at_ms: number | string;
  registered_by: string;
}

export const VERSION_COLUMNS = `v.subject, v.version, v.schema_id, s.schema_type, s.schema, v.deleted,
  v.registered_at_ms, v.registered_by`;

export function toVersion(row: VersionRow): SubjectVersion {
  return {
    subject: row.subject,
    version: row.version,
    id: Number(row.schema_id),
    schemaType: row.schema_type as SchemaType,
    schema: row.schema,
    deleted: row.deleted === true || row.deleted === 1,
    registeredAtMs: Number(row.registered_at_ms),
    registeredBy: row.registered_by,
  };
}

export function auditValues(audit: AuditRecord): unknown[] {
  return [
    audit.namespace,
    audit.action,
    audit.principal,
    audit.atMs,
    audit.versionBefore,
    audit.versionAfter,
    audit.diff,
    audit.source,
  ];
}
