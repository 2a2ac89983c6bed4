import { createRequire } from 'node:module';
import type { Ajv, ValidateFunction } from 'ajv';
import { PrismError } from '../errors.js';
import { compareDiagnostics, isInputProblem, toPointer, type Diagnostic } from './diagnostics.js';
import { schemaFindings, type MakeDiagnostic } from './schema-diagnostics.js';
import { readSourceFile } from './sources.js';
import { parseYamlDocuments, type LoadedDocument } from './yaml-loader.js';

/**
 * The one way to read a YAML config file (backends catalog, dev stack catalog and dev.yaml,
 * $PRISM_HOME/config.yaml; namespaces share every step but split documents their own way):
 * read with the source limits → parse (parseYamlDocuments: js-yaml where it agrees with `yaml`,
 * else `yaml`; positions from `yaml` only when a diagnostic needs one) → validate against the
 * format's JSON Schema (ajv) → the format's own checks → a typed value, or every problem at once
 * as diagnostics naming file, line, column and field.
 */

export type JsonSchema = Record<string, unknown>;

export interface ConfigFormat<T> {
  /** What the file is, in messages: "backends catalog". */
  title: string;
  /** Draft-07 JSON Schema of the whole document; unknown keys should be refused (additionalProperties: false). */
  schema: JsonSchema;
  /** Said under every refusal, e.g. "nothing was started". */
  hint: string;
  /** The value of a file without a document (empty, or only comments); without it that is an error. */
  empty?: T;
  /** Rules a schema cannot state, run only on a value the schema accepted. */
  check?: (value: T, problem: MakeDiagnostic) => void;
}

/** A config file that could not be read or is not valid; `diagnostics` says where and why. */
export class ConfigFileError extends PrismError {
  readonly file: string;
  readonly diagnostics: Diagnostic[];

  constructor(file: string, title: string, diagnostics: Diagnostic[], hint: string) {
    const errors = diagnostics.length;
    const unreadable = diagnostics.some(isInputProblem);
    super(
      unreadable ? 'E_INPUT_UNREADABLE' : 'E_USAGE',
      unreadable
        ? `cannot read ${title} ${file}: ${diagnostics[0]?.message ?? 'unreadable'}`
        : `${file} is not a valid ${title} (${errors} error${errors === 1 ? '' : 's'})`,
      // An unreadable file's own diagnostic already says what to do about it.
      unreadable ? undefined : { hint },
    );
    this.name = 'ConfigFileError';
    this.file = file;
    this.diagnostics = diagnostics;
  }
}

export interface CheckedConfig<T> {
  /** Present when there is no diagnostic. */
  value?: T;
  diagnostics: Diagnostic[];
}

/** Reads and checks `file`; never throws for bad input. */
export function checkConfigFile<T>(file: string, format: ConfigFormat<T>): CheckedConfig<T> {
  const read = readSourceFile(file);
  const source = read.sources[0];
  if (!source) return { diagnostics: read.diagnostics };
  const parsed = parseYamlDocuments(source);
  if (parsed.diagnostics.length > 0) return { diagnostics: parsed.diagnostics };
  const [document, extra] = parsed.documents;
  if (extra) {
    return {
      diagnostics: [
        located(
          file,
          extra,
          'E_YAML_DOCUMENTS',
          `a ${format.title} holds one YAML document, found ${parsed.documents.length}`,
          'remove the `---` and what follows it',
          [],
          false,
        ),
      ],
    };
  }
  if (!document) {
    if (format.empty !== undefined) return { value: structuredClone(format.empty), diagnostics: [] };
    return {
      diagnostics: [
        {
          severity: 'error',
          rule: 'E_EMPTY_FILE',
          message: `file holds no ${format.title}`,
          file,
          line: 1,
          column: 1,
          path: '',
          hint: format.hint,
        },
      ],
    };
  }
  const problem: MakeDiagnostic = (rule, message, hint, at, key = false) =>
    located(file, document, rule, message, hint, at, key);
  const validate = validatorFor(format.schema);
  if (!validate(document.value)) {
    const findings = schemaFindings(validate.errors ?? [], problem, {
      subject: `the ${format.title}`,
      seeAlso: format.hint,
    });
    return { diagnostics: findings.map((f) => f.diagnostic).sort(compareDiagnostics) };
  }
  const diagnostics: Diagnostic[] = [];
  format.check?.(document.value as T, (...args) => {
    const d = problem(...args);
    diagnostics.push(d);
    return d;
  });
  if (diagnostics.length > 0) return { diagnostics: diagnostics.sort(compareDiagnostics) };
  return { value: document.value as T, diagnostics: [] };
}

/** Reads and checks `file`, or throws a ConfigFileError carrying every problem. */
export function loadConfigFile<T>(file: string, format: ConfigFormat<T>): T {
  const { value, diagnostics } = checkConfigFile(file, format);
  if (value === undefined || diagnostics.length > 0) {
    throw new ConfigFileError(file, format.title, diagnostics, format.hint);
  }
  return value;
}

function located(
  file: string,
  document: LoadedDocument,
  rule: string,
  message: string,
  hint: string,
  at: ReadonlyArray<string | number>,
  key: boolean,
): Diagnostic {
  return {
    severity: 'error',
    rule,
    message,
    file,
    ...document.locate(at, key),
    path: toPointer(at),
    hint,
  };
}

const require = createRequire(import.meta.url);
let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();

/** One strict ajv for config formats; a schema is compiled once, also when it is built per call. */
function validatorFor(schema: JsonSchema): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = validators.get(key);
  if (!validate) {
    // Loaded on demand, as for namespaces: commands that read no config file never need the compiler.
    const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
    ajv ??= new AjvClass({ allErrors: true, verbose: true, strict: true });
    validate = ajv.compile(schema);
    validators.set(key, validate);
  }
  return validate;
}
