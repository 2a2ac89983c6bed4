import { PrismError } from '../errors.js';
import type { SchemaStore } from './schemas/store.js';

/**
 * Persistence of the control plane. Two implementations (src/admin/store-sqlite.ts and
 * src/admin/store-postgres.ts) pass the same tests (test/integration/admin/store.test.ts).
 * Every write is a compare-and-set on the stored version, done in one transaction together with
 * its audit entry, so two admins sharing a PostgreSQL store can never both win.
 */

/** A stored namespace: the declaration and the assignment, both as protobuf JSON (proto field names). */
export interface StoredNamespace {
  name: string;
  team: string;
  version: number;
  /** Canonical declaration as protobuf JSON (NamespaceRequest). */
  declaration: unknown;
  /** Assignment as protobuf JSON (NamespaceResponse). */
  assignment: unknown;
  /** SHA-256 of the canonical declaration; equal hashes mean "unchanged". */
  contentHash: string;
  updatedAtMs: number;
  updatedBy: string;
}

export interface AuditRecord {
  namespace: string;
  action: 'create' | 'update' | 'delete';
  principal: string;
  atMs: number;
  versionBefore: number;
  versionAfter: number;
  /** Unified diff of the canonical YAML. */
  diff: string;
  source: string;
}

export interface AuditEntry extends AuditRecord {
  id: number;
}

export interface ProxyRecord {
  proxyId: string;
  address: string;
  version: string;
  lastHeartbeatMs: number;
}

/** Thrown by `put`/`remove` when the stored version is not the expected one. */
export class VersionConflictError extends PrismError {
  constructor(
    readonly namespace: string,
    readonly expected: number,
    /** Stored version, 0 when the namespace does not exist. */
    readonly actual: number,
    /** Who made the stored version, when known. */
    readonly changedBy?: string,
  ) {
    super(
      'E_VERSION_CONFLICT',
      `namespace '${namespace}' is at version ${actual}, not ${expected}` +
        (changedBy ? ` (last changed by ${changedBy})` : ''),
      { hint: 'fetch the current version (prismctl namespace get / diff) and apply again' },
    );
    this.name = 'VersionConflictError';
  }
}

export interface NamespaceStore {
  /** Creates or upgrades the schema. Idempotent; safe with several instances starting at once. */
  migrate(): Promise<void>;
  get(name: string): Promise<StoredNamespace | undefined>;
  list(): Promise<StoredNamespace[]>;
  /**
   * Writes `record` if the stored version equals `expectedVersion` (0 = must not exist), and the
   * audit record, atomically. Throws VersionConflictError otherwise.
   */
  put(record: StoredNamespace, expectedVersion: number, audit: AuditRecord): Promise<void>;
  /** Deletes if the stored version equals `expectedVersion`, with its audit record, atomically. */
  remove(name: string, expectedVersion: number, audit: AuditRecord): Promise<void>;
  /** Audit entries of one namespace, oldest first (kept after a delete). */
  history(name: string): Promise<AuditEntry[]>;
  upsertProxy(proxy: ProxyRecord): Promise<void>;
  /** Proxies whose last heartbeat is at or after `sinceMs`. */
  liveProxies(sinceMs: number): Promise<ProxyRecord[]>;
  /** The schema registry's tables in the same database (docs/schemas.md). */
  schemaStore(): SchemaStore;
  close(): Promise<void>;
}

/** The store cannot be reached, opened or written (disk full, I/O error, server down...). */
export class StoreUnavailableError extends PrismError {
  constructor(
    /** The file or server, without secrets. */
    readonly target: string,
    reason: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super('E_STORE_UNAVAILABLE', `store ${target} is unavailable: ${reason}`, options);
    this.name = 'StoreUnavailableError';
  }
}
