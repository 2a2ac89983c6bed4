import type { AuditEntry, AuditRecord, ProxyRecord, StoredNamespace } from './store.js';

/**
 * The tables' rows as both stores read them, and their mapping to store records. PostgreSQL
 * returns BIGINT columns as strings and json already parsed; SQLite returns numbers and JSON text.
 */
export interface NamespaceRow {
  name: string;
  team: string;
  version: number;
  declaration: unknown;
  assignment: unknown;
  content_hash: string;
  updated_at_ms: number | string;
  updated_by: string;
}

export interface AuditRow {
  id: number | string;
  namespace: string;
  action: AuditRecord['action'];
  principal: string;
  at_ms: number | string;
  version_before: number;
  version_after: number;
  diff: string;
  source: string;
}

export interface ProxyRow {
  proxy_id: string;
  address: string;
  version: string;
  last_heartbeat_ms: number | string;
}

/** JSON columns: text in SQLite, already parsed by pg. */
const readJson = (value: unknown): unknown =>
  typeof value === 'string' ? (JSON.parse(value) as unknown) : value;

export function toNamespace(row: NamespaceRow): StoredNamespace {
  return {
    name: row.name,
    team: row.team,
    version: row.version,
    declaration: readJson(row.declaration),
    assignment: readJson(row.assignment),
    contentHash: row.content_hash,
    updatedAtMs: Number(row.updated_at_ms),
    updatedBy: row.updated_by,
  };
}

export function toAuditEntry(row: AuditRow): AuditEntry {
  return {
    id: Number(row.id),
    namespace: row.namespace,
    action: row.action,
    principal: row.principal,
    atMs: Number(row.at_ms),
    versionBefore: row.version_before,
    versionAfter: row.version_after,
    diff: row.diff,
    source: row.source,
  };
}

export function toProxy(row: ProxyRow): ProxyRecord {
  return {
    proxyId: row.proxy_id,
    address: row.address,
    version: row.version,
    lastHeartbeatMs: Number(row.last_heartbeat_ms),
  };
}
