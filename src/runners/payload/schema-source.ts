/**
 * Where a producer's schema stage learns the schema of its subject (docs/schemas.md,
 * Enforcement): a SchemaCache over a fetch function. In the proxy the fetch is the admin's
 * GetLatestSchema call on the proxy's own admin connection; the cache keeps each subject's latest
 * version for `ttlMs`, so a version registered later is enforced at most `ttlMs` after.
 *
 * When a refresh fails (the admin is down) the cache keeps serving the last version it fetched,
 * so enforcement stays on with the schema it knew, and retries after another `ttlMs`; a subject
 * never fetched fails with E_UNAVAILABLE, so a publish is refused rather than sent unchecked. A
 * subject the registry answers NOT_FOUND for (deleted) fails with that answer.
 */
import { PrismError } from '../../errors.js';
import type { RunnerLogger } from '../lifecycle.js';

export type SchemaType = 'PROTOBUF' | 'JSON' | 'AVRO';

/** The latest live version of a subject, as the registry serves it. */
export interface RegisteredSchema {
  readonly subject: string;
  /** The registry's global schema id. */
  readonly id: number;
  readonly version: number;
  readonly schemaType: SchemaType;
  readonly schema: string;
  /** PROTOBUF: the compiled FileDescriptorSet. */
  readonly descriptorSet?: Uint8Array;
}

/** What a schema stage asks for; SchemaCache is the implementation runners get. */
export interface SchemaSource {
  latest(subject: string): Promise<RegisteredSchema>;
}

export interface SchemaCacheOptions {
  fetch: (subject: string) => Promise<RegisteredSchema>;
  /** How long a fetched version is used before the subject is fetched again. */
  ttlMs: number;
  now?: () => number;
  logger?: RunnerLogger;
}

interface Entry {
  schema?: RegisteredSchema;
  fetchedAtMs: number;
  refreshing?: Promise<RegisteredSchema>;
}

export const DEFAULT_SCHEMA_TTL_MS = 30_000;

export class SchemaCache implements SchemaSource {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly options: SchemaCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  latest(subject: string): Promise<RegisteredSchema> {
    const entry = this.entries.get(subject);
    if (entry?.schema && this.now() - entry.fetchedAtMs < this.options.ttlMs)
      return Promise.resolve(entry.schema);
    if (entry?.refreshing) return entry.refreshing;
    const current = entry ?? { fetchedAtMs: 0 };
    this.entries.set(subject, current);
    const refreshing = this.refresh(subject, current).finally(() => (current.refreshing = undefined));
    current.refreshing = refreshing;
    return refreshing;
  }

  private async refresh(subject: string, entry: Entry): Promise<RegisteredSchema> {
    try {
      const schema = await this.options.fetch(subject);
      entry.schema = schema;
      entry.fetchedAtMs = this.now();
      return schema;
    } catch (caught) {
      const err = caught as PrismError;
      if (err.code === 'E_NOT_FOUND') {
        this.entries.delete(subject);
        throw new PrismError(
          'E_NOT_FOUND',
          `schema subject '${subject}' has no live version in the registry`,
          { hint: `register one: prismctl schema register ${subject} <file>`, cause: err },
        );
      }
      if (entry.schema) {
        entry.fetchedAtMs = this.now();
        this.options.logger?.warn(
          { subject, version: entry.schema.version, err: err.message },
          'schema registry unreachable; enforcing the last version fetched',
        );
        return entry.schema;
      }
      this.entries.delete(subject);
      throw new PrismError(
        'E_UNAVAILABLE',
        `the schema of subject '${subject}' cannot be fetched, so the payload cannot be checked: ${err.message}`,
        { hint: 'retry when the admin (the schema registry) is reachable', cause: err },
      );
    }
  }
}
