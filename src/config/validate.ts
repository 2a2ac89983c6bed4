import { fromJson, toJson } from '@bufbuild/protobuf';
import { yamlLib } from './yaml-lib.js';
import { NamespaceRequestSchema, type NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import { compareDiagnostics, type Diagnostic } from './diagnostics.js';
import { protoJsonToYaml, yamlToProtoJson } from './proto-json.js';
import type { BackendSpec } from './registry.js';
import { checkPolicies, type PolicyCheckOptions } from './policies.js';
import { checkRules } from './rules.js';
import { readSources, type SourceText } from './sources.js';
import { checkStructure } from './structural.js';
import { parseNamespaceSource, type NamespaceDocument } from './yaml-loader.js';

/** A namespace that was read and checked, with where it came from. */
export interface LoadedNamespace {
  request: NamespaceRequest;
  document: NamespaceDocument;
  /** True when no error was found in this namespace. */
  valid: boolean;
}

export interface ValidationReport {
  valid: boolean;
  files: number;
  namespaces: number;
  errors: number;
  warnings: number;
  diagnostics: Diagnostic[];
}

export interface ValidationResult {
  report: ValidationReport;
  loaded: LoadedNamespace[];
}

export interface ValidateOptions {
  /** Warnings make the result invalid. */
  strict?: boolean;
  /** The backends a slot may name; default: the registry's (src/config/registry.ts). */
  backends?: Readonly<Record<string, BackendSpec>>;
  stdin?: () => Promise<Buffer>;
  /** Read `access.policies[].file` from disk (default true; the admin has the text, not the files). */
  readPolicyFiles?: boolean;
}

/** Reads and validates namespace files, directories and stdin; the single path used by validate, export and apply. */
export async function validatePaths(
  paths: readonly string[],
  options: ValidateOptions = {},
): Promise<ValidationResult> {
  const read = await readSources(paths, options.stdin);
  const result = validateSources(read.sources, options);
  const diagnostics = [...read.diagnostics, ...result.report.diagnostics];
  return {
    loaded: result.loaded,
    report: summarize(
      diagnostics,
      read.sources.length + read.diagnostics.length,
      result.loaded.length,
      options.strict,
    ),
  };
}

export function validateSources(
  sources: readonly SourceText[],
  options: ValidateOptions = {},
): ValidationResult {
  const diagnostics: Diagnostic[] = [];
  const loaded: LoadedNamespace[] = [];
  for (const source of sources) {
    const fileDiagnostics: Diagnostic[] = [];
    const parsed = parseNamespaceSource(source);
    fileDiagnostics.push(...parsed.diagnostics);
    for (const document of parsed.namespaces) {
      const found = validateDocument(document, options.backends, {
        readFiles: options.readPolicyFiles ?? true,
        yamlText: source.text,
      });
      fileDiagnostics.push(...found.diagnostics);
      if (found.request)
        loaded.push({
          request: found.request,
          document,
          valid: !found.diagnostics.some((d) => d.severity === 'error'),
        });
    }
    diagnostics.push(...fileDiagnostics.sort(compareDiagnostics));
  }
  diagnostics.push(...duplicateNames(loaded));
  for (const d of diagnostics) {
    if (d.rule === 'E_NAMESPACE_DUPLICATE') {
      const entry = loaded.find(
        (l) => l.document.file === d.file && l.document.pointer(['namespace']) === d.path,
      );
      if (entry) entry.valid = false;
    }
  }
  return { loaded, report: summarize(diagnostics, sources.length, loaded.length, options.strict) };
}

function validateDocument(
  document: NamespaceDocument,
  backends: Readonly<Record<string, BackendSpec>> | undefined,
  policies: PolicyCheckOptions,
): {
  diagnostics: Diagnostic[];
  request?: NamespaceRequest;
} {
  const structure = checkStructure(document);
  let request: NamespaceRequest;
  try {
    request = fromJson(
      NamespaceRequestSchema,
      yamlToProtoJson(structure.pruned, NamespaceRequestSchema) as never,
      {
        ignoreUnknownFields: true,
      },
    );
  } catch (err) {
    // The schema should have caught anything fromJson rejects; report rather than crash if not.
    return {
      diagnostics: [
        ...structure.diagnostics,
        {
          severity: 'error',
          rule: 'E_SCHEMA',
          message: `cannot read namespace: ${(err as Error).message}`,
          file: document.file,
          ...document.locate([]),
          path: document.pointer([]),
          hint: 'see `prismctl namespace schema`',
        },
      ],
    };
  }
  return {
    diagnostics: [
      ...structure.diagnostics,
      ...checkRules(request, document, structure.pruned, backends),
      ...checkPolicies(request, document, policies),
    ],
    request,
  };
}

function duplicateNames(loaded: readonly LoadedNamespace[]): Diagnostic[] {
  const first = new Map<string, LoadedNamespace>();
  const out: Diagnostic[] = [];
  for (const entry of loaded) {
    const name = entry.request.namespace;
    if (!name) continue;
    const previous = first.get(name);
    if (!previous) {
      first.set(name, entry);
      continue;
    }
    const pos = previous.document.locate(['namespace']);
    out.push({
      severity: 'error',
      rule: 'E_NAMESPACE_DUPLICATE',
      message: `namespace '${name}' is declared more than once`,
      file: entry.document.file,
      ...entry.document.locate(['namespace']),
      path: entry.document.pointer(['namespace']),
      hint: `first declared at ${previous.document.file}:${pos.line}:${pos.column}; rename or remove one`,
    });
  }
  return out;
}

function summarize(
  diagnostics: Diagnostic[],
  files: number,
  namespaces: number,
  strict = false,
): ValidationReport {
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  return {
    valid: errors === 0 && !(strict && warnings > 0),
    files,
    namespaces,
    errors,
    warnings,
    diagnostics,
  };
}

/**
 * Validates a namespace that arrived as a message (e.g. over gRPC) with exactly the rules that
 * files get: it is rendered to YAML and checked as a file named `file`.
 */
export function validateMessage(ns: NamespaceRequest, file: string): ValidationResult {
  const json = toJson(NamespaceRequestSchema, ns, { useProtoFieldName: true });
  const text = yamlLib().stringify(protoJsonToYaml(json, NamespaceRequestSchema), { lineWidth: 0 });
  return validateSources([{ file, text }], { readPolicyFiles: false });
}
