import { readdirSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join } from 'node:path';
import type { NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';
import { isPrismError, PrismError } from '../../errors.js';
import { readSourceFile } from '../../config/sources.js';
import { textLine } from '../../config/report-format.js';
import { parseYamlDocuments, type Path } from '../../config/yaml-loader.js';
import { explainDecision, type DecisionQuestion } from './explain.js';
import { loadNamespaceFile } from './load-namespace.js';

/** The outcome of one expected decision of a `policy check` case file. */
export interface CaseResult {
  file: string;
  line: number;
  name: string;
  expected: 'allow' | 'deny';
  actual: 'allow' | 'deny';
  /** The policies that decided. */
  policies: string[];
  /** Ids the case expected to decide, when it named them. */
  expectedPolicies?: string[];
  pass: boolean;
}

export interface CheckReport {
  passed: number;
  failed: number;
  results: CaseResult[];
}

type Obj = Record<string, unknown>;

/**
 * Runs every case file (`*.yaml`, `*.yml`) under `dir`: each names a namespace file (relative to
 * itself) and a list of cases with an expected decision (docs/policies.md §10). A case file that
 * cannot be read is an E_USAGE error naming file:line:col; a decision that differs is a failed case.
 */
export async function checkPolicyCases(dir: string): Promise<CheckReport> {
  const files = caseFiles(dir);
  if (files.length === 0)
    throw new PrismError('E_USAGE', `${dir} holds no .yaml or .yml case files`, {
      hint: 'see docs/policies.md §10',
    });
  const namespaces = new Map<string, Promise<NamespaceRequest>>();
  const results: CaseResult[] = [];
  for (const file of files) {
    const read = readSourceFile(file);
    const source = read.sources[0];
    if (!source) throw new PrismError('E_USAGE', read.diagnostics.map(textLine).join('').trimEnd());
    const parsed = parseYamlDocuments(source);
    if (parsed.diagnostics.length > 0)
      throw new PrismError('E_USAGE', parsed.diagnostics.map(textLine).join('').trimEnd());
    for (const doc of parsed.documents) {
      const fail = (message: string, at: Path): never => {
        const pos = doc.locate(at, false);
        throw new PrismError('E_USAGE', `${file}:${pos.line}:${pos.column}: ${message}`, {
          hint: 'see docs/policies.md §10 for the case file format',
        });
      };
      const value = doc.value as Obj | null;
      if (!value || typeof value !== 'object') fail('a case file is a mapping with namespace and cases', []);
      const nsPath = value!.namespace;
      if (typeof nsPath !== 'string' || nsPath === '')
        fail('namespace: the path of a namespace file is required', ['namespace']);
      const nsFile = isAbsolute(nsPath as string)
        ? (nsPath as string)
        : join(dirname(file), nsPath as string);
      if (!namespaces.has(nsFile)) namespaces.set(nsFile, loadNamespaceFile(nsFile, stringOr(value!.name)));
      let ns: NamespaceRequest;
      try {
        ns = await namespaces.get(nsFile)!;
      } catch (err) {
        if (isPrismError(err)) fail(err.message, ['namespace']);
        throw err;
      }
      const cases = value!.cases;
      if (!Array.isArray(cases) || cases.length === 0) fail('cases: a non-empty list is required', ['cases']);
      (cases as unknown[]).forEach((raw, i) => {
        const at: Path = ['cases', i];
        const c = (raw ?? {}) as Obj;
        const expected = c.expect;
        if (expected !== 'allow' && expected !== 'deny')
          fail('expect: allow or deny is required', [...at, 'expect']);
        const principal = (c.principal ?? {}) as Obj;
        if (typeof principal.subject !== 'string')
          fail('principal.subject is required', [...at, 'principal']);
        if (typeof c.action !== 'string') fail('action is required', [...at]);
        const context = (c.context ?? {}) as Obj;
        const question: DecisionQuestion = {
          principal: {
            subject: principal.subject as string,
            email: stringOr(principal.email),
            tenant: stringOr(principal.tenant),
            groups: stringList(principal.groups),
            scopes: stringList(principal.scopes),
            claims: Object.fromEntries(
              Object.entries((principal.claims ?? {}) as Obj).map(([k, v]) => [k, String(v as string)]),
            ),
          },
          action: c.action as string,
          resource: stringOr(c.resource),
          context: {
            time: stringOr(context.time),
            client_ip: stringOr(context.client_ip),
            token_age_seconds:
              typeof context.token_age_seconds === 'number' ? context.token_age_seconds : undefined,
          },
        };
        let explained;
        try {
          explained = explainDecision(ns, question);
        } catch (err) {
          if (isPrismError(err)) fail(err.message, at);
          throw err;
        }
        const policies = explained.policies.map((p) => p.id);
        const expectedPolicies = c.policies === undefined ? undefined : stringList(c.policies);
        const samePolicies =
          expectedPolicies === undefined ||
          JSON.stringify([...expectedPolicies].sort()) === JSON.stringify(policies);
        results.push({
          file,
          line: doc.locate(at, false).line,
          name: stringOr(c.name) ?? `case ${i + 1}`,
          expected: expected as 'allow' | 'deny',
          actual: explained.decision,
          policies,
          ...(expectedPolicies ? { expectedPolicies } : {}),
          pass: explained.decision === expected && samePolicies,
        });
      });
    }
  }
  const passed = results.filter((r) => r.pass).length;
  return { passed, failed: results.length - passed, results };
}

function caseFiles(dir: string): string[] {
  let info;
  try {
    info = statSync(dir);
  } catch {
    throw new PrismError('E_USAGE', `${dir}: no such file or directory`);
  }
  if (!info.isDirectory()) return [dir];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && ['.yaml', '.yml'].includes(extname(e.name)))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

const stringOr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const stringList = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
