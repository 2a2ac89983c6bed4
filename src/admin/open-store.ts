/**
 * Opens the control-plane store named by a spec: a `postgres://` / `postgresql://` URL selects
 * PostgreSQL, anything else is the path of a SQLite file. The schema is migrated before the store
 * is returned. A store that cannot be opened or written is a StoreUnavailableError naming the file
 * or server, with any password in the URL replaced by `***`.
 */
import { StoreUnavailableError, type NamespaceStore } from './store.js';
import { SqliteStore } from './store-sqlite.js';
import { PostgresStore } from './store-postgres.js';

export { StoreUnavailableError } from './store.js';

export interface OpenStoreOptions {
  /** PostgreSQL schema holding the tables (default `public`). Ignored for SQLite. */
  schema?: string;
  /** PostgreSQL pool size (default 4). */
  maxConnections?: number;
  /** PostgreSQL connection timeout (default 5 s). */
  connectionTimeoutMs?: number;
  /** SQLite: wait for another process's write lock (default 5 s). */
  busyTimeoutMs?: number;
  /** SQLite: cap on the file size; writes past it fail as if the disk were full. */
  maxSizeBytes?: number;
}

export function isPostgresSpec(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec.trim());
}

/** The spec with any password removed, for messages and logs. */
export function redactSpec(spec: string): string {
  if (!isPostgresSpec(spec)) return spec;
  try {
    const url = new URL(spec.trim());
    if (url.password) url.password = '***';
    if (url.searchParams.has('password')) url.searchParams.set('password', '***');
    return url.toString();
  } catch {
    // Not a parseable URL: blank out everything between "//user:" and "@", and any password= value.
    return spec.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/(password=)[^&]*/gi, '$1***');
  }
}

/** Opens and migrates the store named by `spec`; throws StoreUnavailableError when it cannot. */
export async function openStore(spec: string, options: OpenStoreOptions = {}): Promise<NamespaceStore> {
  if (spec.trim() === '') throw new StoreUnavailableError('(none)', 'no store path or URL was given');
  let store: NamespaceStore;
  let target: string;
  if (isPostgresSpec(spec)) {
    const pgStore = new PostgresStore({
      connectionString: spec.trim(),
      schema: options.schema,
      maxConnections: options.maxConnections,
      connectionTimeoutMs: options.connectionTimeoutMs,
    });
    store = pgStore;
    target = pgStore.target;
  } else {
    target = `SQLite file ${spec}`;
    try {
      store = new SqliteStore(spec, {
        busyTimeoutMs: options.busyTimeoutMs,
        maxSizeBytes: options.maxSizeBytes,
      });
    } catch (err) {
      throw asUnavailable(err, target);
    }
  }
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw asUnavailable(err, target);
  }
  return store;
}

/** A write must move the version forward, or two writers could both pass the same check. */
export function checkVersions(name: string, expectedVersion: number, newVersion: number): void {
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
    throw new RangeError(
      `expected version of '${name}' must be a non-negative integer, got ${expectedVersion}`,
    );
  }
  if (!Number.isSafeInteger(newVersion) || newVersion <= expectedVersion) {
    throw new RangeError(
      `new version of '${name}' must be an integer above the expected ${expectedVersion}, got ${newVersion}`,
    );
  }
}

function asUnavailable(err: unknown, target: string): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StoreUnavailableError(target, message, { cause: err });
}
