/**
 * Persistence of the schema registry, in the admin's store (the same SQLite file or PostgreSQL
 * schema as the namespaces, and the same audit_log table). Two implementations
 * (./store-sqlite.ts, ./store-postgres.ts) pass the same tests (test/integration/admin/schema-store.test.ts).
 */
import type { AuditRecord } from '../store.js';
import type { CompatibilityMode, SchemaType } from './modes.js';

export interface StoredSchema {
  /** Global id, shared by every subject that registered the same schema. */
  id: number;
  schemaType: SchemaType;
  /** The schema text as first registered. */
  schema: string;
}

export interface SubjectVersion extends StoredSchema {
  subject: string;
  version: number;
  /** Soft-deleted: still readable by id, left out of lists and compatibility checks. */
  deleted: boolean;
  registeredAtMs: number;
  registeredBy: string;
}

export interface NewVersion {
  subject: string;
  /** The highest version (deleted ones included) the caller saw; 0 for none. */
  expectedMaxVersion: number;
  schemaType: SchemaType;
  schema: string;
  /** Identity of the schema across subjects (type and normalized text, hashed). */
  fingerprint: string;
  atMs: number;
  principal: string;
}

/** Thrown by `register` when the subject gained a version since the caller read it. */
export class SubjectChangedError extends Error {
  constructor(readonly subject: string) {
    super(`subject '${subject}' changed while registering`);
    this.name = 'SubjectChangedError';
  }
}

/** The global compatibility mode is stored under this subject. */
export const GLOBAL_CONFIG = '';

export interface SchemaStore {
  /** Creates or upgrades the registry's tables (its own migration list). Idempotent. */
  migrate(): Promise<void>;
  /** Subjects with a live version (or any version when `includeDeleted`), sorted. */
  subjects(includeDeleted: boolean): Promise<string[]>;
  /** Every version of a subject, soft-deleted ones included, oldest first. */
  versions(subject: string): Promise<SubjectVersion[]>;
  schemaById(id: number): Promise<StoredSchema | undefined>;
  /** The subject versions that use schema `id`, deleted ones included. */
  usesOf(id: number): Promise<Array<{ subject: string; version: number; deleted: boolean }>>;
  /**
   * Adds version expectedMaxVersion + 1 (reusing the schema's id when the fingerprint is known)
   * with its audit entry, atomically; SubjectChangedError when the subject moved on meanwhile.
   */
  register(
    version: NewVersion,
    audit: (id: number, version: number) => AuditRecord,
  ): Promise<{ id: number; version: number }>;
  /** Marks versions deleted, or removes them when `permanent`, with the audit entry, atomically. */
  deleteVersions(
    subject: string,
    versions: readonly number[],
    permanent: boolean,
    audit: AuditRecord,
  ): Promise<void>;
  /** A subject's own mode (GLOBAL_CONFIG: the global one), undefined when not set. */
  getMode(subject: string): Promise<CompatibilityMode | undefined>;
  /** Sets (or with undefined removes) a mode, with its audit entry. */
  setMode(subject: string, mode: CompatibilityMode | undefined, audit: AuditRecord): Promise<void>;
}
