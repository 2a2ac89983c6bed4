import { describe, expect, it } from 'vitest';
import { validateSources } from '../../../src/config/validate.js';
import { check, keyvaluePattern, source, textAt, toYaml, validNamespace } from '../../support/factories.js';

const NAME_HINT =
  'use 2-63 characters: lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen';

describe('namespace, team and pattern names', () => {
  it.each(['ab', 'orders', 'orders-v2', 'a1-b2-c3', 'a'.repeat(63)])('accepts the name %j', (name) => {
    const { diagnostics } = check(
      validNamespace({ namespace: name, team: name, patterns: [keyvaluePattern({ name })] }),
    );
    expect(diagnostics).toEqual([]);
  });

  it.each([
    ['a single character', 'a'],
    ['64 characters', 'a'.repeat(64)],
    ['an uppercase letter', 'Orders'],
    ['a leading digit', '1orders'],
    ['a leading hyphen', '-orders'],
    ['a trailing hyphen', 'orders-'],
    ['a double hyphen', 'orders--v2'],
    ['an underscore', 'orders_v2'],
    ['a dot', 'orders.v2'],
  ])('rejects a namespace name with %s', (_what, name) => {
    const { diagnostics, text } = check(validNamespace({ namespace: name }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_NAMESPACE_NAME',
        message: `namespace '${name}' is not a valid name`,
        file: 'ns.yaml',
        line: 1,
        column: 12,
        path: '/namespace',
        hint: NAME_HINT,
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe(name);
  });

  it('rejects a team name with an uppercase letter', () => {
    const { diagnostics } = check(validNamespace({ team: 'Commerce' }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_TEAM_NAME',
        message: "team 'Commerce' is not a valid name",
        file: 'ns.yaml',
        line: 2,
        column: 7,
        path: '/team',
        hint: NAME_HINT,
      },
    ]);
  });

  it('rejects an owner team that is not a valid name', () => {
    const { diagnostics, text } = check(validNamespace({ access: { owners: [{ team: 'Billing_Team' }] } }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_TEAM_NAME',
        message: "access.owners[0].team 'Billing_Team' is not a valid name",
        file: 'ns.yaml',
        line: 11,
        column: 13,
        path: '/access/owners/0/team',
        hint: NAME_HINT,
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('Billing_Team');
  });

  it('rejects a pattern name with a trailing hyphen', () => {
    const { diagnostics, text } = check(validNamespace({ patterns: [keyvaluePattern({ name: 'cache-' })] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_PATTERN_NAME',
        message: "patterns[0].name 'cache-' is not a valid name",
        file: 'ns.yaml',
        line: 4,
        column: 11,
        path: '/patterns/0/name',
        hint: NAME_HINT,
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('cache-');
  });
});

describe('unique names', () => {
  it('rejects a pattern name used twice in one namespace, pointing at the second', () => {
    const { diagnostics, text } = check(validNamespace({ patterns: [keyvaluePattern(), keyvaluePattern()] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_PATTERN_DUPLICATE',
        message: "pattern name 'cache' is used twice",
        file: 'ns.yaml',
        line: 9,
        column: 11,
        path: '/patterns/1/name',
        hint: 'rename one; the first is patterns[0]',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('cache');
  });

  it('accepts the same pattern name in two different namespaces', () => {
    const { diagnostics } = check(toYaml(validNamespace(), validNamespace({ namespace: 'payments' })));
    expect(diagnostics).toEqual([]);
  });

  it('rejects a namespace declared in two files, naming where it was first declared', () => {
    const { report } = validateSources([
      source(toYaml(validNamespace()), 'a.yaml'),
      source(toYaml(validNamespace({ team: 'payments' })), 'b.yaml'),
    ]);
    expect(report.diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_NAMESPACE_DUPLICATE',
        message: "namespace 'orders' is declared more than once",
        file: 'b.yaml',
        line: 1,
        column: 12,
        path: '/namespace',
        hint: 'first declared at a.yaml:1:12; rename or remove one',
      },
    ]);
    expect(report.valid).toBe(false);
  });

  it('rejects a namespace declared twice in one file of several documents', () => {
    const { diagnostics } = check(toYaml(validNamespace(), validNamespace()));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_NAMESPACE_DUPLICATE',
        message: "namespace 'orders' is declared more than once",
        file: 'ns.yaml',
        line: 10,
        column: 12,
        path: '/namespace',
        hint: 'first declared at ns.yaml:1:12; rename or remove one',
      },
    ]);
  });

  it('marks only the second declaration of a duplicate namespace as invalid', () => {
    const { loaded } = validateSources([
      source(toYaml(validNamespace()), 'a.yaml'),
      source(toYaml(validNamespace()), 'b.yaml'),
    ]);
    expect(loaded.map((l) => [l.document.file, l.valid])).toEqual([
      ['a.yaml', true],
      ['b.yaml', false],
    ]);
  });

  it('accepts different namespaces across files', () => {
    const { report } = validateSources([
      source(toYaml(validNamespace()), 'a.yaml'),
      source(toYaml(validNamespace({ namespace: 'payments' })), 'b.yaml'),
    ]);
    expect(report).toMatchObject({ valid: true, files: 2, namespaces: 2, errors: 0, diagnostics: [] });
  });
});
