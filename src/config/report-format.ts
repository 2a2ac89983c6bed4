import type { Diagnostic } from './diagnostics.js';
import type { ValidationReport } from './validate.js';

export type ReportFormat = 'text' | 'json' | 'github';

export function renderReport(report: ValidationReport, format: ReportFormat): string {
  switch (format) {
    case 'json':
      return JSON.stringify(report, null, 2) + '\n';
    case 'github':
      return report.diagnostics.map(githubAnnotation).join('') + summaryLine(report) + '\n';
    default:
      return report.diagnostics.map(textLine).join('') + summaryLine(report) + '\n';
  }
}

/** `file:line:col: error RULE: message`, then the hint indented on its own line. */
export function textLine(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file;
  return `${where}: ${d.severity} ${d.rule}: ${d.message}\n` + (d.hint ? `  hint: ${d.hint}\n` : '');
}

export function summaryLine(report: ValidationReport): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const verdict = report.valid ? 'valid' : 'invalid';
  return `${verdict}: ${plural(report.files, 'file')}, ${plural(report.namespaces, 'namespace')}, ${plural(report.errors, 'error')}, ${plural(report.warnings, 'warning')}`;
}

/** A GitHub Actions workflow command, escaped as the runner expects. */
function githubAnnotation(d: Diagnostic): string {
  const props = [`file=${escapeProperty(d.file)}`];
  if (d.line > 0) props.push(`line=${d.line}`, `col=${d.column}`);
  props.push(`title=${escapeProperty(d.rule)}`);
  const text = d.hint ? `${d.message} (${d.hint})` : d.message;
  return `::${d.severity} ${props.join(',')}::${escapeData(text)}\n`;
}

function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}
