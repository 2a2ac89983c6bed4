/**
 * The schema registry's operations (docs/schemas.md), over the admin's store: register with the
 * compatibility check, lookups, soft and permanent deletes, and compatibility modes. Every change
 * is written with an audit entry under the subject's namespace.
 */
import { createHash } from 'node:crypto';
import type { AuditRecord } from '../store.js';
import { compatibilityProblems, parseSchema, type ParsedSchema } from './compatibility.js';
import { invalidSchema, RegistryError, schemaNotFound, subjectNotFound, versionNotFound } from './errors.js';
import {
  DEFAULT_MODE,
  parseMode,
  parseSchemaType,
  type CompatibilityMode,
  type SchemaType,
} from './modes.js';
import { GLOBAL_CONFIG, SubjectChangedError, type SchemaStore, type SubjectVersion } from './store.js';
import { parseSubject } from './subject.js';

/** A schema as a request carries it (Confluent's body: schema, schemaType, references). */
export interface SchemaInput {
  schema?: unknown;
  schemaType?: unknown;
  references?: unknown;
}

export interface VersionInfo {
  subject: string;
  id: number;
  version: number;
  schemaType: SchemaType;
  schema: string;
}

export interface CompatibilityReport {
  isCompatible: boolean;
  messages: string[];
}

/** A version as a path names it: a number, or `latest` (Confluent also accepts -1). */
export type VersionRef = number | 'latest';

export function parseVersionRef(value: string): VersionRef {
  if (value === 'latest' || value === '-1') return 'latest';
  const n = Number(value);
  if (/^[0-9]+$/.test(value) && Number.isSafeInteger(n) && n >= 1) return n;
  throw new RegistryError(
    42202,
    `The specified version '${value}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
  );
}

export interface SchemaRegistryOptions {
  store: SchemaStore;
  /** Whether a namespace exists (subjects are registered only under applied namespaces). */
  namespaceExists: (name: string) => Promise<boolean>;
  now?: () => number;
}

/** Another admin on the same store can win the compare-and-set; each lost round retries. */
const REGISTER_ATTEMPTS = 10;
const PARSED_CACHE_MAX = 512;

export class SchemaRegistry {
  private readonly store: SchemaStore;
  private readonly now: () => number;
  /** Parsed schemas by global id (a stored schema never changes). */
  private readonly parsed = new Map<number, ParsedSchema>();
  /** Registers in this process, one at a time per subject (the store's compare-and-set covers other admins). */
  private readonly registering = new Map<string, Promise<unknown>>();

  constructor(private readonly options: SchemaRegistryOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
  }

  migrate(): Promise<void> {
    return this.store.migrate();
  }

  /** Registers `input` under `subject`, or returns the live version that already has it. */
  async register(
    subject: string,
    input: SchemaInput,
    principal: string,
  ): Promise<VersionInfo & { created: boolean }> {
    const { namespace } = parseSubject(subject);
    const { type, text, parsed } = await this.parseInput(input);
    if (!(await this.options.namespaceExists(namespace)))
      throw new RegistryError(
        40401,
        `Subject '${subject}' not found: namespace '${namespace}' does not exist`,
      );
    const fingerprint = fingerprintOf(parsed);
    for (let attempt = 0; attempt < REGISTER_ATTEMPTS; attempt++) {
      const versions = await this.store.versions(subject);
      const live = versions.filter((v) => !v.deleted);
      for (const existing of live) {
        if (fingerprintOf(await this.parsedOf(existing)) === fingerprint)
          return { ...info(existing), created: false };
      }
      const mode = await this.effectiveMode(subject);
      const problems = await compatibilityProblems(mode, parsed, await this.parsedVersions(live));
      if (problems.length > 0) throw incompatible(subject, mode, problems);
      const maxVersion = versions.at(-1)?.version ?? 0;
      try {
        const { id, version } = await this.store.register(
          {
            subject,
            expectedMaxVersion: maxVersion,
            schemaType: type,
            schema: text,
            fingerprint,
            atMs: this.now(),
            principal,
          },
          (id, version) =>
            this.audit(namespace, 'create', principal, subject, live.at(-1)?.version ?? 0, version, [
              `register ${subject} version ${version} (id ${id}, ${type})`,
              text,
            ]),
        );
        return { subject, id, version, schemaType: type, schema: text, created: true };
      } catch (err) {
        if (!(err instanceof SubjectChangedError)) throw err;
      }
    }
    throw new RegistryError(50001, `Subject '${subject}' kept changing while registering; try again`);
  }

  /** The live version of `subject` whose schema is `input` (POST /subjects/{s}). */
  async lookup(subject: string, input: SchemaInput): Promise<VersionInfo> {
    parseSubject(subject);
    const { parsed } = await this.parseInput(input);
    const live = (await this.store.versions(subject)).filter((v) => !v.deleted);
    if (live.length === 0) throw subjectNotFound(subject);
    const fingerprint = fingerprintOf(parsed);
    for (const version of live)
      if (fingerprintOf(await this.parsedOf(version)) === fingerprint) return info(version);
    throw schemaNotFound(`under subject '${subject}'`);
  }

  subjects(includeDeleted = false): Promise<string[]> {
    return this.store.subjects(includeDeleted);
  }

  async versionNumbers(subject: string, includeDeleted = false): Promise<number[]> {
    const versions = (await this.store.versions(subject)).filter((v) => includeDeleted || !v.deleted);
    if (versions.length === 0) throw subjectNotFound(subject);
    return versions.map((v) => v.version);
  }

  async version(subject: string, ref: VersionRef, includeDeleted = false): Promise<VersionInfo> {
    const versions = await this.store.versions(subject);
    if (!versions.some((v) => includeDeleted || !v.deleted)) throw subjectNotFound(subject);
    const found =
      ref === 'latest'
        ? versions.filter((v) => includeDeleted || !v.deleted).at(-1)
        : versions.find((v) => v.version === ref && (includeDeleted || !v.deleted));
    if (!found) throw versionNotFound(subject, ref);
    return info(found);
  }

  async schemaById(id: number): Promise<{ id: number; schemaType: SchemaType; schema: string }> {
    const schema = Number.isSafeInteger(id) ? await this.store.schemaById(id) : undefined;
    if (!schema) throw schemaNotFound(`id ${id}`);
    return schema;
  }

  async usesOf(id: number): Promise<Array<{ subject: string; version: number }>> {
    await this.schemaById(id);
    return (await this.store.usesOf(id))
      .filter((u) => !u.deleted)
      .map(({ subject, version }) => ({ subject, version }));
  }

  /** Soft-deletes a subject's live versions, or (permanent) removes a soft-deleted subject. */
  async deleteSubject(subject: string, permanent: boolean, principal: string): Promise<number[]> {
    const { namespace } = parseSubject(subject);
    const versions = await this.store.versions(subject);
    if (versions.length === 0) throw subjectNotFound(subject);
    const live = versions.filter((v) => !v.deleted).map((v) => v.version);
    if (permanent && live.length > 0)
      throw new RegistryError(
        40405,
        `Subject '${subject}' was not deleted first before being permanently deleted`,
      );
    if (!permanent && live.length === 0)
      throw new RegistryError(
        40404,
        `Subject '${subject}' was soft deleted. Set permanent=true to delete permanently`,
      );
    const target = permanent ? versions.map((v) => v.version) : live;
    await this.store.deleteVersions(
      subject,
      target,
      permanent,
      this.audit(namespace, 'delete', principal, subject, target.at(-1) ?? 0, 0, [
        `${permanent ? 'permanently delete' : 'delete'} ${subject} versions ${target.join(', ')}`,
      ]),
    );
    return target;
  }

  async deleteVersion(
    subject: string,
    ref: VersionRef,
    permanent: boolean,
    principal: string,
  ): Promise<number> {
    const { namespace } = parseSubject(subject);
    const versions = await this.store.versions(subject);
    if (versions.length === 0) throw subjectNotFound(subject);
    const found =
      ref === 'latest' ? versions.filter((v) => !v.deleted).at(-1) : versions.find((v) => v.version === ref);
    if (!found) throw versionNotFound(subject, ref);
    if (permanent && !found.deleted)
      throw new RegistryError(
        40407,
        `Subject '${subject}' Version ${found.version} was not deleted first before being permanently deleted`,
      );
    if (!permanent && found.deleted)
      throw new RegistryError(
        40406,
        `Subject '${subject}' Version ${found.version} was soft deleted. Set permanent=true to delete permanently`,
      );
    await this.store.deleteVersions(
      subject,
      [found.version],
      permanent,
      this.audit(namespace, 'delete', principal, subject, found.version, 0, [
        `${permanent ? 'permanently delete' : 'delete'} ${subject} version ${found.version} (id ${found.id})`,
      ]),
    );
    return found.version;
  }

  /**
   * Would `input` be accepted after version `ref`? For `latest`, by the subject's mode (all live
   * versions when transitive); for a given version, against that version alone.
   */
  async checkCompatibility(
    subject: string,
    ref: VersionRef,
    input: SchemaInput,
  ): Promise<CompatibilityReport> {
    parseSubject(subject);
    const { parsed } = await this.parseInput(input);
    const live = (await this.store.versions(subject)).filter((v) => !v.deleted);
    if (live.length === 0) throw subjectNotFound(subject);
    const mode = await this.effectiveMode(subject);
    let against = live;
    let checkMode = mode;
    if (ref !== 'latest') {
      const found = live.find((v) => v.version === ref);
      if (!found) throw versionNotFound(subject, ref);
      against = [found];
      checkMode = mode.replace('_TRANSITIVE', '') as CompatibilityMode;
    }
    const messages = await compatibilityProblems(checkMode, parsed, await this.parsedVersions(against));
    return { isCompatible: messages.length === 0, messages };
  }

  /** The subject's own mode (GLOBAL_CONFIG for the global one), undefined when not set. */
  mode(subject: string): Promise<CompatibilityMode | undefined> {
    if (subject !== GLOBAL_CONFIG) parseSubject(subject);
    return this.store.getMode(subject);
  }

  async effectiveMode(subject: string): Promise<CompatibilityMode> {
    return (await this.store.getMode(subject)) ?? (await this.store.getMode(GLOBAL_CONFIG)) ?? DEFAULT_MODE;
  }

  async setMode(subject: string, value: unknown, principal: string): Promise<CompatibilityMode> {
    const namespace = subject === GLOBAL_CONFIG ? '*' : parseSubject(subject).namespace;
    const mode = parseMode(value);
    const before = await this.store.getMode(subject);
    await this.store.setMode(
      subject,
      mode,
      this.audit(namespace, 'update', principal, subject || '(global)', 0, 0, [
        `compatibility of ${subject || 'the registry'}: ${before ?? '(unset)'} → ${mode}`,
      ]),
    );
    return mode;
  }

  /** Removes a subject's own mode; returns it. 40408 when it had none. */
  async deleteMode(subject: string, principal: string): Promise<CompatibilityMode> {
    const { namespace } = parseSubject(subject);
    const before = await this.store.getMode(subject);
    if (!before) throw noSubjectMode(subject);
    await this.store.setMode(
      subject,
      undefined,
      this.audit(namespace, 'update', principal, subject, 0, 0, [
        `compatibility of ${subject}: ${before} → (global)`,
      ]),
    );
    return before;
  }

  private async parseInput(
    input: SchemaInput,
  ): Promise<{ type: SchemaType; text: string; parsed: ParsedSchema }> {
    if (Array.isArray(input.references) && input.references.length > 0)
      throw invalidSchema('schema references are not supported by Prism');
    if (typeof input.schema !== 'string' || input.schema.trim() === '')
      throw invalidSchema('the request has no "schema" string');
    const type = parseSchemaType(input.schemaType);
    return { type, text: input.schema, parsed: await parseSchema(type, input.schema) };
  }

  private async parsedOf(version: {
    id: number;
    schemaType: SchemaType;
    schema: string;
  }): Promise<ParsedSchema> {
    const cached = this.parsed.get(version.id);
    if (cached) return cached;
    const parsed = await parseSchema(version.schemaType, version.schema);
    if (this.parsed.size >= PARSED_CACHE_MAX) this.parsed.delete(this.parsed.keys().next().value as number);
    this.parsed.set(version.id, parsed);
    return parsed;
  }

  private async parsedVersions(
    versions: SubjectVersion[],
  ): Promise<Array<{ version: number; schema: ParsedSchema }>> {
    const out = [];
    for (const v of versions) out.push({ version: v.version, schema: await this.parsedOf(v) });
    return out;
  }

  private audit(
    namespace: string,
    action: AuditRecord['action'],
    principal: string,
    subject: string,
    versionBefore: number,
    versionAfter: number,
    lines: string[],
  ): AuditRecord {
    return {
      namespace,
      action,
      principal,
      atMs: this.now(),
      versionBefore,
      versionAfter,
      diff: `${lines.join('\n')}\n`,
      source: `schema-registry ${subject}`,
    };
  }
}

export function noSubjectMode(subject: string): RegistryError {
  return new RegistryError(
    40408,
    `Subject '${subject}' does not have subject-level compatibility configured`,
  );
}

function fingerprintOf(parsed: ParsedSchema): string {
  return createHash('sha256').update(`${parsed.type}\n${parsed.normalized}`).digest('hex');
}

function info(v: SubjectVersion): VersionInfo {
  return { subject: v.subject, id: v.id, version: v.version, schemaType: v.schemaType, schema: v.schema };
}

function incompatible(subject: string, mode: CompatibilityMode, problems: string[]): RegistryError {
  return new RegistryError(
    40901,
    `Schema being registered is incompatible with an earlier schema for subject "${subject}" (${mode}): ${problems.join('; ')}`,
    problems,
  );
}
