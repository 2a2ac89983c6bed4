import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { Diagnostic } from './diagnostics.js';
import { buildNamespaceSchema } from './json-schema.js';
import { didYouMean } from './suggest.js';
import { diagnosticAt, isPlainObject, type NamespaceDocument, type Path } from './yaml-loader.js';

/**
 * Structural checks (types, enums, unknown keys, formats) with ajv against the schema generated
 * from the proto descriptors. Values that fail are pruned from a copy, so that the semantic rules
 * still run on the rest and every problem is reported in one pass.
 */

const require = createRequire(import.meta.url);
let validator: ValidateFunction | undefined;

/** The ajv set-up shared by the runtime compile and the build-time precompiled validator. */
export function createNamespaceAjv(options: { source?: boolean } = {}): Ajv {
  // Loaded on demand: the CLI normally uses the precompiled validator and never needs the compiler.
  const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
  const ajv = new AjvClass({
    allErrors: true,
    verbose: true,
    strict: true,
    code: { source: options.source ?? false },
  });
  ajv.addKeyword({ keyword: 'x-prism-format', schemaType: 'string' });
  ajv.addSchema(buildNamespaceSchema(), NAMESPACE_SCHEMA_ID);
  return ajv;
}

export const NAMESPACE_SCHEMA_ID = 'namespace';
export const NAMESPACE_REQUEST_REF = `${NAMESPACE_SCHEMA_ID}#/definitions/NamespaceRequest`;
/** Written next to this module by scripts/build-validator.js; compiling the schema at start-up costs ~100 ms. */
export const PRECOMPILED_VALIDATOR = './namespace-validator.cjs';

function namespaceValidator(): ValidateFunction {
  validator ??=
    loadPrecompiled() ?? (createNamespaceAjv().getSchema(NAMESPACE_REQUEST_REF) as ValidateFunction);
  return validator;
}

function loadPrecompiled(): ValidateFunction | undefined {
  try {
    return (require(PRECOMPILED_VALIDATOR) as { NamespaceRequest: ValidateFunction }).NamespaceRequest;
  } catch {
    return undefined; // running from sources (tests): compile instead
  }
}

export interface StructureResult {
  diagnostics: Diagnostic[];
  /** A deep copy of the namespace without the values that failed. */
  pruned: Record<string, unknown>;
}

export function checkStructure(doc: NamespaceDocument): StructureResult {
  const validate = namespaceValidator();
  const pruned = structuredClone(doc.value);
  if (validate(doc.value)) return { diagnostics: [], pruned };
  const diagnostics: Diagnostic[] = [];
  const prunePaths: Path[] = [];
  for (const error of validate.errors ?? []) {
    const mapped = mapError(error, doc);
    if (!mapped) continue;
    diagnostics.push(mapped.diagnostic);
    if (mapped.prune) prunePaths.push(mapped.prune);
  }
  pruneAll(pruned, prunePaths);
  return { diagnostics, pruned };
}

interface Mapped {
  diagnostic: Diagnostic;
  prune?: Path;
}

function mapError(error: ErrorObject, doc: NamespaceDocument): Mapped | undefined {
  const path = parsePointer(error.instancePath);
  const where = describe(path);
  const parent = error.parentSchema as Record<string, unknown> | undefined;
  const make = (rule: string, message: string, hint: string, at: Path, key = false): Diagnostic =>
    diagnosticAt(doc, 'error', rule, message, hint, at, key);

  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String((error.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys((parent?.properties as Record<string, unknown> | undefined) ?? {});
      const at = [...path, key];
      return {
        diagnostic: make(
          'E_SCHEMA_UNKNOWN_KEY',
          `unknown key '${key}' in ${where}`,
          didYouMean(key, allowed),
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
      return { diagnostic: patternDiagnostic(path, parent, error.data, make) };
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
        diagnostic: make(
          'E_SCHEMA',
          `${where} ${error.message ?? 'is invalid'}`,
          'see `prismctl namespace schema`',
          path,
        ),
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
  make: (rule: string, message: string, hint: string, at: Path) => Diagnostic,
): Diagnostic {
  const where = describe(path);
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
      return make(
        'E_SCHEMA_PATTERN',
        `${where} '${value}' has the wrong format`,
        example ? `for example '${example}'` : 'see `prismctl namespace schema`',
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

/** "patterns[0].slots.store" for messages; "the namespace" at the top. */
export function describe(path: Path): string {
  if (path.length === 0) return 'the namespace';
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

/** Removes the values at `paths`, deepest first and array items from the end, so indices stay valid. */
function pruneAll(root: Record<string, unknown>, paths: Path[]): void {
  const sorted = [...paths].sort((a, b) => b.length - a.length || compareLast(b, a));
  for (const path of sorted) {
    if (path.length === 0) continue;
    let node: unknown = root;
    for (const step of path.slice(0, -1))
      node = (node as Record<string | number, unknown> | undefined)?.[step];
    const last = path[path.length - 1] as string | number;
    if (Array.isArray(node) && typeof last === 'number') node.splice(last, 1);
    else if (isPlainObject(node)) delete node[last];
  }
}

function compareLast(a: Path, b: Path): number {
  const x = a[a.length - 1];
  const y = b[b.length - 1];
  return typeof x === 'number' && typeof y === 'number' ? x - y : 0;
}
