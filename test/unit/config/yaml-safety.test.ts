import { describe, expect, it } from 'vitest';
import { check, toYaml, validNamespace } from '../../support/factories.js';

const SYNTAX_HINT = 'fix the YAML syntax at this position';

describe('YAML syntax', () => {
  it('rejects an unclosed flow sequence, where the parser gave up', () => {
    const { diagnostics } = check('namespace: orders\nteam: commerce\npatterns: [\n');
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_YAML_SYNTAX',
        message: 'Flow sequence in block collection must be sufficiently indented and end with a ]',
        file: 'ns.yaml',
        line: 4,
        column: 1,
        path: '',
        hint: SYNTAX_HINT,
      },
    ]);
  });

  it('rejects a tab used as indentation, on its line', () => {
    const { diagnostics } = check('namespace: orders\n\tteam: commerce\n');
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message])).toEqual([
      ['E_YAML_SYNTAX', 2, 1, 'Tabs are not allowed as indentation'],
    ]);
  });

  it('rejects an unterminated quoted string without echoing the rest of the file', () => {
    const { diagnostics } = check('namespace: "orders\nteam: commerce\n');
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message])).toEqual([
      ['E_YAML_SYNTAX', 3, 1, 'Missing closing "quote'],
    ]);
  });

  it('rejects a key given twice in one mapping, at the second', () => {
    const { diagnostics } = check('namespace: orders\nteam: commerce\nnamespace: payments\n');
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_YAML_DUPLICATE_KEY',
        message: 'Map keys must be unique',
        file: 'ns.yaml',
        line: 3,
        column: 1,
        path: '',
        hint: SYNTAX_HINT,
      },
    ]);
  });

  it('rejects a key given twice inside a list item', () => {
    const text =
      'namespace: orders\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    name: other\n';
    expect(check(text).diagnostics.map((d) => [d.rule, d.line, d.column])).toEqual([
      ['E_YAML_DUPLICATE_KEY', 6, 5],
    ]);
  });

  it('still validates the other documents of a file when one has a syntax error', () => {
    const text =
      'namespace: orders\nteam: commerce\npatterns: [\n---\n' + toYaml(validNamespace({ team: 'Payments' }));
    const { diagnostics } = check(text);
    expect(diagnostics.map((d) => [d.rule, d.line, d.column])).toEqual([
      ['E_YAML_SYNTAX', 4, 1],
      ['E_TEAM_NAME', 6, 7],
    ]);
  });
});

describe('aliases', () => {
  it('accepts a few anchors and aliases', () => {
    const text = [
      'namespace: orders',
      'team: &team commerce',
      'patterns:',
      '  - name: cache',
      '    type: keyvalue',
      '    slots: { store: { backend: redis } }',
      'access: { owners: [{ team: *team }] }',
      '',
    ].join('\n');
    expect(check(text).diagnostics).toEqual([]);
  });

  it('rejects an alias bomb (billion laughs) with one diagnostic instead of expanding it', () => {
    const lines = [
      'namespace: orders',
      'team: commerce',
      'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
    ];
    for (let i = 1; i <= 9; i++)
      lines.push(
        `a${i}: &a${i} [${Array(9)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const { diagnostics } = check(lines.join('\n') + '\n');
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_YAML_ALIAS',
        message: 'aliases expand to more than 100 nodes (possible alias bomb)',
        file: 'ns.yaml',
        line: 1,
        column: 1,
        path: '',
        hint: 'remove the repeated aliases',
      },
    ]);
  });

  it('rejects an alias to an anchor that was never defined', () => {
    const { diagnostics } = check('namespace: orders\nteam: *owner\n');
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_YAML_ALIAS',
        message: 'an alias refers to an anchor that is not defined before it',
        file: 'ns.yaml',
        line: 1,
        column: 1,
        path: '',
        hint: 'define the anchor (&name) before the alias (*name)',
      },
    ]);
  });
});

describe('nesting depth', () => {
  const depthError = {
    severity: 'error',
    rule: 'E_YAML_DEPTH',
    message: 'nesting is deeper than 64 levels',
    file: 'ns.yaml',
    line: 1,
    column: 1,
    path: '',
    hint: 'flatten the document',
  };
  const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

  it('rejects nesting one level deeper than the limit', () => {
    // The namespace mapping is level 1; metadata's value adds 64 more.
    const { diagnostics } = check(`namespace: orders\nteam: commerce\nmetadata: ${nested(64)}\n`);
    expect(diagnostics).toEqual([depthError]);
  });

  it('checks nesting at the limit like any other value', () => {
    const { diagnostics } = check(`namespace: orders\nteam: commerce\nmetadata: ${nested(63)}\n`);
    expect(diagnostics.map((d) => d.rule)).toEqual(['E_SCHEMA_TYPE']);
  });

  it('rejects 10,000 nested flow sequences with one diagnostic, without overflowing the stack', () => {
    expect(check(`${nested(10_000)}\n`).diagnostics).toEqual([depthError]);
  }, 20_000);

  it('rejects 10,000 nested flow sequences inside a namespace', () => {
    const { diagnostics } = check(`namespace: orders\nteam: commerce\nmetadata: ${nested(10_000)}\n`);
    expect(diagnostics).toEqual([depthError]);
  }, 20_000);

  it('rejects 10,000 nested flow mappings', () => {
    expect(check('{a: '.repeat(10_000) + '1' + '}'.repeat(10_000) + '\n').diagnostics).toEqual([depthError]);
  }, 20_000);

  it('rejects 10,000 nested block mappings', () => {
    const text = Array.from({ length: 10_000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1\n';
    expect(check(text).diagnostics).toEqual([depthError]);
  }, 20_000);
});

describe('empty input', () => {
  const emptyFile = {
    severity: 'error',
    rule: 'E_EMPTY_FILE',
    message: 'file holds no namespace',
    file: 'ns.yaml',
    line: 1,
    column: 1,
    path: '',
    hint: 'add `namespace: <name>` or remove the file',
  };

  it.each([
    ['an empty file', ''],
    ['blank lines', '\n\n  \n'],
    ['only a comment', '# orders namespace, to do\n'],
    ['only document separators', '---\n---\n'],
  ])('rejects %s', (_what, text) => {
    expect(check(text).diagnostics).toEqual([emptyFile]);
  });

  it('accepts a trailing document separator after a namespace', () => {
    expect(check(toYaml(validNamespace()) + '---\n').diagnostics).toEqual([]);
  });

  it('accepts a leading document separator and comments', () => {
    expect(check('# orders\n---\n' + toYaml(validNamespace())).diagnostics).toEqual([]);
  });
});
