import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import { namespacePolicies, policySourceLabel } from '../auth/policy/namespace-policies.js';
import { checkPolicyText, type PolicyProblem } from '../auth/policy/source-check.js';
import type { Diagnostic } from './diagnostics.js';
import { diagnosticAt, type NamespaceDocument, type Position } from './yaml-loader.js';

/** Policy files larger than this are refused unread. */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024;

export interface PolicyCheckOptions {
  /**
   * Read `file` sources from disk, relative to the namespace file, into `cedar` (the CLI).
   * Without it (the admin, which has no access to the client's files) `cedar` must carry the text.
   */
  readFiles: boolean;
  /** The namespace document's YAML text, to place problems of inline policies. */
  yamlText: string;
}

/**
 * Checks `access.policies` of one namespace: each source is read (files), parsed and validated in
 * strict mode against Prism's Cedar schema. Problems of a file are reported at the file's own
 * path:line:col; problems of inline text at their place in the YAML. Loaded file text is stored
 * in the request's `cedar`, so what is applied is what was checked.
 */
export function checkPolicies(
  ns: NamespaceRequest,
  doc: NamespaceDocument,
  options: PolicyCheckOptions,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const sources = ns.access?.policies ?? [];
  let clean = true;
  sources.forEach((source, i) => {
    const at = ['access', 'policies', i];
    const error = (rule: string, message: string, hint: string, path: (string | number)[]) => {
      clean = false;
      out.push(diagnosticAt(doc, 'error', rule, message, hint, path));
    };
    if (!source.file && !source.cedar) {
      error(
        'E_POLICY_SOURCE',
        'a policy source names neither `file` nor `cedar`',
        'give a .cedar file path or inline Cedar text',
        at,
      );
      return;
    }
    if (source.file) {
      const display = policyFilePath(doc.file, source.file);
      if (options.readFiles) {
        const read = readPolicyFile(display);
        if (typeof read !== 'string') {
          error('E_POLICY_FILE', `policy file ${display}: ${read.problem}`, read.hint, [...at, 'file']);
          return;
        }
        source.cedar = read;
      } else if (!source.cedar) {
        error(
          'E_POLICY_FILE',
          `policy file ${source.file} was not loaded: its text is missing`,
          'apply with prismctl, which reads policy files next to the namespace file',
          [...at, 'file'],
        );
        return;
      }
      for (const p of checkPolicyText(source.cedar)) {
        if (p.severity === 'error') clean = false;
        out.push(fileDiagnostic(doc, display, p, [...at, 'file']));
      }
      return;
    }
    const start = doc.locate([...at, 'cedar']);
    for (const p of checkPolicyText(source.cedar)) {
      if (p.severity === 'error') clean = false;
      out.push({
        ...diagnosticAt(doc, p.severity, p.rule, p.message, p.hint ?? hintOf(p), [...at, 'cedar']),
        ...inlinePosition(options.yamlText, start, p),
      });
    }
  });
  if (clean && sources.length > 0) out.push(...duplicateIds(ns, doc));
  return out;
}

/** The path of a policy file as the user sees it: next to the namespace file, unless absolute. */
export function policyFilePath(namespaceFile: string, file: string): string {
  if (isAbsolute(file) || namespaceFile === '<stdin>' || namespaceFile === '<request>') return file;
  return join(dirname(namespaceFile), file);
}

function readPolicyFile(path: string): string | { problem: string; hint: string } {
  try {
    const size = statSync(path).size;
    if (size > MAX_POLICY_FILE_BYTES)
      return {
        problem: `${size} bytes, larger than ${MAX_POLICY_FILE_BYTES}`,
        hint: 'split the policies into several files',
      };
    return new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path)).replace(/^\uFEFF/, '');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      return { problem: 'no such file', hint: 'the path is relative to the namespace file' };
    if (code === undefined) return { problem: 'not valid UTF-8', hint: 'save the file as UTF-8' };
    return { problem: `cannot read (${code})`, hint: 'check the path and its permissions' };
  }
}

function hintOf(p: PolicyProblem): string {
  return p.rule === 'E_POLICY_SYNTAX'
    ? 'see https://docs.cedarpolicy.com/policies/syntax-policy.html'
    : 'see docs/policies.md for the entities, actions and context Prism provides';
}

function fileDiagnostic(
  doc: NamespaceDocument,
  file: string,
  p: PolicyProblem,
  at: (string | number)[],
): Diagnostic {
  return {
    severity: p.severity,
    rule: p.rule,
    message: p.message,
    file,
    line: p.line,
    column: p.column,
    path: doc.pointer(at),
    hint: p.hint ?? hintOf(p),
  };
}

/**
 * Where a position inside an inline policy is in the YAML: exact for block scalars (`|`) and
 * single-line strings; for folded or multi-line quoted text, the line of the text's start.
 */
function inlinePosition(yaml: string, start: Position, p: PolicyProblem): Position {
  const lines = yaml.split('\n');
  const header = lines[start.line - 1] ?? '';
  const indicator = header[start.column - 1];
  if (indicator === '|') {
    const content = lines.slice(start.line).find((l) => l.trim() !== '') ?? '';
    const indent = content.length - content.trimStart().length;
    return { line: start.line + p.line, column: indent + p.column };
  }
  if (indicator === '>') return start;
  const quoted = indicator === '"' || indicator === "'" ? 1 : 0;
  if (p.line === 1) return { line: start.line, column: start.column + quoted + p.column - 1 };
  return start;
}

function duplicateIds(ns: NamespaceRequest, doc: NamespaceDocument): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  const labels = (ns.access?.policies ?? []).map((_, i) => policySourceLabel(ns, i));
  for (const policy of namespacePolicies(ns)) {
    const index = labels.indexOf(policy.source);
    if (seen.has(policy.id))
      out.push(
        diagnosticAt(
          doc,
          'error',
          'E_POLICY_ID',
          `two policies have the id '${policy.id}' (${policy.source}:${policy.line})`,
          'give each @id annotation a unique value; ids starting with default. are taken by the default set',
          index >= 0 ? ['access', 'policies', index] : ['access', 'policies'],
        ),
      );
    seen.add(policy.id);
  }
  return out;
}
