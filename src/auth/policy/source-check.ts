import { cedar, type DetailedError } from './cedar.js';
import type { NamedPolicy } from './defaults.js';
import { prismCedarSchema } from './model.js';

/** A problem Cedar found in one source of policies, located in that source's text. */
export interface PolicyProblem {
  severity: 'error' | 'warning';
  rule: 'E_POLICY_SYNTAX' | 'E_POLICY_SCHEMA' | 'E_POLICY_ID';
  message: string;
  hint?: string;
  /** Character offset in the source text; line and column are 1-based. */
  offset: number;
  line: number;
  column: number;
}

/** Line and column (1-based) of a character offset in `text`. */
export function positionIn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Cedar reports UTF-8 byte offsets; diagnostics count characters. */
function charOffset(bytes: Buffer, byteOffset: number): number {
  return bytes.subarray(0, Math.min(byteOffset, bytes.length)).toString('utf8').length;
}

function problemOf(
  text: string,
  bytes: Buffer,
  rule: PolicyProblem['rule'],
  severity: PolicyProblem['severity'],
  err: DetailedError,
): PolicyProblem {
  const first = err.sourceLocations?.[0];
  const offset = first ? charOffset(bytes, first.start) : 0;
  const label = first?.label ? `: ${first.label}` : '';
  // Cedar names the policy by its position in the text ("policy0"); the position says it better.
  const message = err.message
    .replace(/^for policy `policy\d+`, /, '')
    .replace(/ for Prism::Action::"[^"]*"/, '')
    .replace(/^failed to parse policies from string: /, '');
  const hint = err.help ?? undefined;
  return {
    severity,
    rule,
    message: message + label,
    ...(hint ? { hint } : {}),
    offset,
    ...positionIn(text, offset),
  };
}

/**
 * Parses one source of Cedar policies and validates it (strict mode) against Prism's schema.
 * Returns every problem with its position in `text`.
 */
export function checkPolicyText(text: string): PolicyProblem[] {
  const engine = cedar();
  const bytes = Buffer.from(text, 'utf8');
  const parsed = engine.checkParsePolicySet({ staticPolicies: text });
  if (parsed.type === 'failure')
    return parsed.errors.map((e) => problemOf(text, bytes, 'E_POLICY_SYNTAX', 'error', e));
  const validated = engine.validate({ schema: prismCedarSchema(), policies: { staticPolicies: text } });
  if (validated.type === 'failure')
    return validated.errors.map((e) => problemOf(text, bytes, 'E_POLICY_SCHEMA', 'error', e));
  return distinct([
    ...validated.validationErrors.map((e) => problemOf(text, bytes, 'E_POLICY_SCHEMA', 'error', e.error)),
    ...validated.validationWarnings.map((e) => problemOf(text, bytes, 'E_POLICY_SCHEMA', 'warning', e.error)),
  ]);
}

/** Cedar repeats a problem once per action of a group; one report per place and message is enough. */
function distinct(problems: PolicyProblem[]): PolicyProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.offset}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The policies of one parsed source, each with its id: its `@id("...")` annotation, else
 * `<label>:<line>`. Call only on text checkPolicyText accepted.
 */
export function splitPolicies(text: string, label: string): NamedPolicy[] {
  const engine = cedar();
  const parts = engine.policySetTextToParts(text);
  if (parts.type === 'failure') return [];
  let cursor = 0;
  return parts.policies.map((policy) => {
    const at = text.indexOf(policy, cursor);
    if (at >= 0) cursor = at + policy.length;
    const line = at >= 0 ? positionIn(text, at).line : 0;
    const json = engine.policyToJson(policy);
    const annotated = json.type === 'success' ? json.json.annotations?.id : undefined;
    return { id: annotated ?? `${label}:${line}`, text: policy, source: label, line };
  });
}
