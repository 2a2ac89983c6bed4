/**
 * Small factories for namespace declarations, so that each test states only what it changes.
 *
 *   const text = toYaml(validNamespace({ team: 'Commerce' }));
 *   const { diagnostics } = check(text);
 *
 * Every factory returns a fresh, valid object; overrides replace top-level keys (a key set to
 * `undefined` is removed). `toYaml` writes block style with keys in insertion order, so the line of
 * each key is predictable: `validNamespace()` is
 *
 *   1 namespace: orders
 *   2 team: commerce
 *   3 patterns:
 *   4   - name: cache
 *   5     type: keyvalue
 *   6     slots:
 *   7       store:
 *   8         backend: redis
 */
import { stringify } from 'yaml';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import type { SourceText } from '../../src/config/sources.js';
import { validateSources, type ValidationResult } from '../../src/config/validate.js';

export type Obj = Record<string, unknown>;

/** Defaults with overrides applied; overrides that are `undefined` remove the key. */
function build(defaults: Obj, overrides: Obj): Obj {
  const out: Obj = { ...defaults, ...overrides };
  for (const [key, value] of Object.entries(out)) if (value === undefined) delete out[key];
  return out;
}

export function keyvaluePattern(overrides: Obj = {}): Obj {
  return build({ name: 'cache', type: 'keyvalue', slots: { store: { backend: 'redis' } } }, overrides);
}

export function producerPattern(overrides: Obj = {}): Obj {
  return build(
    {
      name: 'events',
      type: 'producer',
      slots: { sink: { backend: 'kafka' } },
      settings: { topic: 'orders.events' },
    },
    overrides,
  );
}

export function consumerPattern(overrides: Obj = {}): Obj {
  return build(
    {
      name: 'billing',
      type: 'consumer',
      slots: { source: { backend: 'kafka' } },
      settings: { topic: 'orders.events', consumer_group: 'billing' },
    },
    overrides,
  );
}

export function sessionManagerPattern(overrides: Obj = {}): Obj {
  return build(
    { name: 'sessions', type: 'session-manager', slots: { store: { backend: 'redis' } } },
    overrides,
  );
}

export function mailboxPattern(overrides: Obj = {}): Obj {
  return build(
    {
      name: 'inbox',
      type: 'mailbox',
      slots: { source: { backend: 'kafka' }, store: { backend: 'sqlite' } },
      settings: { topic: 'orders.events' },
    },
    overrides,
  );
}

/** `orders`, owned by `commerce`, with one keyvalue pattern on redis; auth off. */
export function validNamespace(overrides: Obj = {}): Obj {
  return build({ namespace: 'orders', team: 'commerce', patterns: [keyvaluePattern()] }, overrides);
}

/** Auth enabled with an https issuer and one audience. */
export function authEnabled(overrides: Obj = {}): Obj {
  return build({ enabled: true, issuer: 'https://login.example.com', audiences: ['prismctl'] }, overrides);
}

/** Vault sessions on: what makes keyvalue, producer and consumer patterns session-aware. */
export function vaultEnabled(overrides: Obj = {}): Obj {
  return build({ enabled: true, address: 'http://localhost:8200', role: 'prism-orders' }, overrides);
}

/**
 * A valid namespace with auth and Vault enabled and its one session-manager; `patterns` given here
 * come before the session-manager, which is always last.
 */
export function sessionNamespace(patterns: Obj[] = [keyvaluePattern()], overrides: Obj = {}): Obj {
  return validNamespace({
    patterns: [...patterns, sessionManagerPattern()],
    auth: { ...authEnabled(), vault: vaultEnabled() },
    ...overrides,
  });
}

/** YAML text of one or more namespaces (several become `---` documents). */
export function toYaml(...namespaces: Obj[]): string {
  return namespaces.map((ns) => stringify(ns, { lineWidth: 0 })).join('---\n');
}

export function source(text: string, file = 'ns.yaml'): SourceText {
  return { file, text };
}

export interface Checked extends ValidationResult {
  text: string;
  diagnostics: Diagnostic[];
}

/** Validates one file holding `input` (YAML text, or a namespace object written with `toYaml`). */
export function check(input: string | Obj, file = 'ns.yaml'): Checked {
  const text = typeof input === 'string' ? input : toYaml(input);
  const result = validateSources([source(text, file)]);
  return { ...result, text, diagnostics: result.report.diagnostics };
}

/** The source text a diagnostic points at, to the end of its line: shows what a position means. */
export function textAt(text: string, at: { line: number; column: number }): string {
  const line = text.split('\n')[at.line - 1] ?? '';
  return line.slice(at.column - 1);
}

/** The diagnostics of one rule. */
export function withRule(diagnostics: readonly Diagnostic[], rule: string): Diagnostic[] {
  return diagnostics.filter((d) => d.rule === rule);
}
