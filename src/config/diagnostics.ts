/** Validation findings and how they are counted. Rendering lives in src/config/report-format.ts. */

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  /** Stable rule id, e.g. E_SLOT_UNBOUND. */
  rule: string;
  message: string;
  file: string;
  /** 1-based; 0 when the finding has no position. */
  line: number;
  column: number;
  /** JSON pointer of the offending value within the namespace document, "" for the whole file. */
  path: string;
  hint?: string;
}

/** Rules about input that could not be read at all; the CLI exits 2 for these, not 1. */
export const INPUT_RULES: ReadonlySet<string> = new Set([
  'E_FILE_NOT_FOUND',
  'E_FILE_UNREADABLE',
  'E_NO_FILES',
]);

export function isInputProblem(d: Diagnostic): boolean {
  return INPUT_RULES.has(d.rule);
}

export function toPointer(path: ReadonlyArray<string | number>): string {
  return path.map((p) => '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return a.line - b.line || a.column - b.column || a.rule.localeCompare(b.rule);
}
