import { createRequire } from 'node:module';
import type { Ajv, ValidateFunction } from 'ajv';
import type { Diagnostic } from './diagnostics.js';
import { buildNamespaceSchema } from './json-schema.js';
import { schemaFindings } from './schema-diagnostics.js';
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
  /**
   * The namespace without the values that failed: a deep copy when something failed, else the
   * document's own value (read-only to callers; copying every valid file cost a seventh of
   * validating a thousand of them).
   */
  pruned: Readonly<Record<string, unknown>>;
}

export function checkStructure(doc: NamespaceDocument): StructureResult {
  const validate = namespaceValidator();
  if (validate(doc.value)) return { diagnostics: [], pruned: doc.value };
  const pruned = structuredClone(doc.value);
  const findings = schemaFindings(
    validate.errors ?? [],
    (rule, message, hint, at, key = false) => diagnosticAt(doc, 'error', rule, message, hint, at, key),
    { subject: 'the namespace', seeAlso: 'see `prismctl namespace schema`' },
  );
  const diagnostics = findings.map((f) => f.diagnostic);
  const prunePaths = findings.flatMap((f) => (f.prune ? [f.prune] : []));
  pruneAll(pruned, prunePaths);
  return { diagnostics, pruned };
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
