import type { ErrorObject } from 'ajv';
import type { Diagnostic } from './diagnostics.js';
import { didYouMean } from './suggest.js';

/**
 * ajv errors as diagnostics: one finding per error, at the offending value (or, for an unknown
 * key, at the key), with a stable rule id and a fix hint ("did you mean" for keys and enums).
 * Shared by the namespace validator and every other config file (src/config/config-file.ts).
 */

export type Path = ReadonlyArray<string | number>;

/** Makes a located error diagnostic; `key` points at the key of the last step rather than its value. */
export type MakeDiagnostic = (
  rule: string,
  message: string,
  hint: string,
  at: Path,
  key?: boolean,
) => Diagnostic;

export interface SchemaFinding {
  diagnostic: Diagnostic;
  /** The value that failed, when the rest of the document can still be checked without it. */
  prune?: Path;
}

export interface SchemaMessages {
  /** What the whole document is called in messages: "the namespace", "the file". */
  subject: string;
  /** Hint when nothing more specific is known, e.g. "see `prismctl namespace schema`". */
  seeAlso: string;
}

export function schemaFindings(
  errors: readonly ErrorObject[],
  make: MakeDiagnostic,
  messages: SchemaMessages,
): SchemaFinding[] {
  // An anyOf reports its own error and one per failed branch; only its own is worth showing.
  const alternatives = errors.filter((e) => e.keyword === 'anyOf').map((e) => `${e.schemaPath}/`);
  const findings: SchemaFinding[] = [];
  for (const error of errors) {
    if (alternatives.some((prefix) => error.schemaPath.startsWith(prefix))) continue;
    findings.push(mapError(error, make, messages));
  }
  return findings;
}

function mapError(error: ErrorObject, make: MakeDiagnostic, messages: SchemaMessages): SchemaFinding {
  const path = parsePointer(error.instancePath);
  const where = describe(path, messages.subject);
  const parent = error.parentSchema as Record<string, unknown> | undefined;

  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String((error.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys((parent?.properties as Record<string, unknown> | undefined) ?? {});
      const at = [...path, key];
      return {
        diagnostic: make(
          'E_SCHEMA_UNKNOWN_KEY',
          `unknown key '${key}' in ${where}`,
          allowed.length > 0 ? didYouMean(key, allowed) : `remove '${key}'`,
          at,
          true,
        ),
        prune: at,
      };
    }
    case 'required': {
      const missing = String((error.params as { missingProperty: string }).missingProperty);
      return {
        diagnostic: make(
          'E_SCHEMA_REQUIRED',
          `${where} is missing required key '${missing}'`,
          `add \`${missing}: ...\``,
          path,
        ),
      };
    }
    case 'minLength':
      return { diagnostic: make('E_SCHEMA_REQUIRED', `${where} must not be empty`, 'give it a value', path) };
    case 'type': {
      const expected = String((error.params as { type: string }).type);
      return {
        diagnostic: make(
          'E_SCHEMA_TYPE',
          `${where} must be ${article(expected)}, found ${kindOf(error.data)}`,
          typeHint(expected, parent),
          path,
        ),
        prune: path,
      };
    }
    case 'anyOf': {
      const branches = ((error.schema as Array<Record<string, unknown>> | undefined) ?? []).map(branchName);
      return {
        diagnostic: make(
          'E_SCHEMA_TYPE',
          `${where} must be ${branches.join(' or ')}, found ${kindOf(error.data)}`,
          typeof parent?.description === 'string' ? `write ${parent.description}` : messages.seeAlso,
          path,
        ),
        prune: path,
      };
    }
    case 'enum': {
      const allowed = ((error.params as { allowedValues: unknown[] }).allowedValues ?? []).map(String);
      return {
        diagnostic: make(
          'E_SCHEMA_ENUM',
          `${where} has unknown value '${String(error.data)}'`,
          didYouMean(String(error.data), allowed),
          path,
        ),
        prune: path,
      };
    }
    case 'pattern':
      return { diagnostic: patternDiagnostic(path, parent, error.data, make, messages) };
    case 'minimum':
    case 'maximum': {
      const limit = (error.params as { limit: number }).limit;
      const relation = error.keyword === 'minimum' ? 'at least' : 'at most';
      return {
        diagnostic: make(
          'E_SCHEMA_RANGE',
          `${where} must be ${relation} ${limit}, found ${String(error.data)}`,
          `use a value ${relation} ${limit}`,
          path,
        ),
        prune: path,
      };
    }
    case 'minItems': {
      const limit = (error.params as { limit: number }).limit;
      return {
        diagnostic: make(
          'E_SCHEMA_MIN_ITEMS',
          `${where} needs at least ${limit} item${limit === 1 ? '' : 's'}`,
          'add an item',
          path,
        ),
      };
    }
    default:
      return {
        diagnostic: make('E_SCHEMA', `${where} ${error.message ?? 'is invalid'}`, messages.seeAlso, path),
        prune: path,
      };
  }
}

const NAME_RULES: Record<string, string> = {
  namespace: 'E_NAMESPACE_NAME',
  team: 'E_TEAM_NAME',
  name: 'E_PATTERN_NAME',
};

function patternDiagnostic(
  path: Path,
  parent: Record<string, unknown> | undefined,
  data: unknown,
  make: MakeDiagnostic,
  messages: SchemaMessages,
): Diagnostic {
  const where = describe(path, messages.subject);
  const value = String(data);
  switch (parent?.['x-prism-format']) {
    case 'name':
      return make(
        NAME_RULES[String(path[path.length - 1])] ?? 'E_TEAM_NAME',
        `${where} '${value}' is not a valid name`,
        'use 2-63 characters: lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen',
        path,
      );
    case 'duration':
      return make(
        'E_DURATION',
        `${where} '${value}' is not a duration`,
        'write a number and a unit: 250ms, 30s, 15m, 12h, 7d',
        path,
      );
    case 'size':
      return make(
        'E_SIZE',
        `${where} '${value}' is not a size`,
        'write a number and an optional unit: 512KiB, 1MiB, 1000000',
        path,
      );
    default: {
      const example = (parent?.examples as string[] | undefined)?.[0];
      const description = parent?.description as string | undefined;
      return make(
        'E_SCHEMA_PATTERN',
        `${where} '${value}' has the wrong format`,
        example ? `for example '${example}'` : description ? `write ${description}` : messages.seeAlso,
        path,
      );
    }
  }
}

function typeHint(expected: string, parent: Record<string, unknown> | undefined): string {
  const example = (parent?.examples as string[] | undefined)?.[0];
  if (example) return `for example: ${example}`;
  if (expected === 'array') return 'write a list: `- item`';
  if (expected === 'object') return 'write a mapping: `key: value`';
  if (expected === 'string') return 'quote the value';
  return `write ${article(expected)}`;
}

function branchName(branch: Record<string, unknown>): string {
  const type = String(branch.type);
  const items = branch.items as Record<string, unknown> | undefined;
  if (type === 'array' && typeof items?.type === 'string') return `a list of ${items.type}s`;
  return article(type);
}

/** "patterns[0].slots.store" for messages; `subject` at the top. */
export function describe(path: Path, subject = 'the namespace'): string {
  if (path.length === 0) return subject;
  return path.reduce<string>(
    (acc, step) => (typeof step === 'number' ? `${acc}[${step}]` : acc ? `${acc}.${step}` : step),
    '',
  );
}

function parsePointer(pointer: string): Array<string | number> {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function article(type: string): string {
  if (type === 'integer') return 'an integer';
  if (type === 'object') return 'a mapping';
  if (type === 'array') return 'a list';
  return `a ${type}`;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  return `a ${typeof value}`;
}
