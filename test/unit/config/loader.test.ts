import { describe, expect, it } from 'vitest';
import { parseNamespaceSource } from '../../../src/config/yaml-loader.js';
import { check, keyvaluePattern, source, textAt, toYaml, validNamespace } from '../../support/factories.js';

describe('what a file may hold', () => {
  it('loads a file with one namespace', () => {
    const { loaded, report } = check(validNamespace());
    expect(report).toMatchObject({ valid: true, files: 1, namespaces: 1, errors: 0, warnings: 0 });
    expect(loaded.map((l) => [l.request.namespace, l.request.team, l.request.patterns[0]?.type])).toEqual([
      ['orders', 'commerce', 'keyvalue'],
    ]);
  });

  it('loads every namespace of a `namespaces:` list', () => {
    const { loaded, report } = check({
      namespaces: [validNamespace(), validNamespace({ namespace: 'payments' })],
    });
    expect(report).toMatchObject({ valid: true, namespaces: 2 });
    expect(loaded.map((l) => l.request.namespace)).toEqual(['orders', 'payments']);
  });

  it('loads every document of a file with several `---` documents', () => {
    const { loaded } = check(
      toYaml(
        validNamespace(),
        validNamespace({ namespace: 'payments' }),
        validNamespace({ namespace: 'search' }),
      ),
    );
    expect(loaded.map((l) => l.request.namespace)).toEqual(['orders', 'payments', 'search']);
  });

  it('loads a namespace written as JSON', () => {
    const { loaded, diagnostics } = check(JSON.stringify(validNamespace(), null, 2));
    expect(diagnostics).toEqual([]);
    expect(loaded[0]!.request.namespace).toBe('orders');
  });

  it('reads YAML spellings of enum values into the proto enums', () => {
    const { loaded } = check(
      validNamespace({ needs: { durability: 'best-effort', consistency: 'eventual' } }),
    );
    expect(loaded[0]!.request.needs).toMatchObject({ durability: 3, consistency: 2 });
  });

  it('rejects a `namespaces:` list next to other keys', () => {
    const { diagnostics } = check({ namespaces: [validNamespace()], team: 'commerce' });
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_TYPE',
        message: '`namespaces:` must be the only key and hold a list of namespaces',
        file: 'ns.yaml',
        line: 2,
        column: 3,
        path: '/namespaces',
        hint: 'write `namespaces:` followed by `- namespace: ...` items',
      },
    ]);
  });

  it('rejects an item of a `namespaces:` list that is not a mapping, and loads the others', () => {
    const { diagnostics, loaded } = check({ namespaces: [validNamespace(), 'payments'] });
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_TYPE',
        message: 'namespaces[1] must be a mapping, found a string',
        file: 'ns.yaml',
        line: 10,
        column: 5,
        path: '/namespaces/1',
        hint: 'write `- namespace: <name>`',
      },
    ]);
    expect(loaded.map((l) => l.request.namespace)).toEqual(['orders']);
  });
});

describe('positions', () => {
  it('points into the right item of a `namespaces:` list, with a path from the top of the file', () => {
    const text = toYaml({
      namespaces: [
        validNamespace(),
        validNamespace({
          namespace: 'payments',
          patterns: [keyvaluePattern(), keyvaluePattern({ name: 'sessions', type: 'kv' })],
        }),
      ],
    });
    const { diagnostics } = check(text);
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_PATTERN_TYPE',
        message: "unknown pattern type 'kv'",
        file: 'ns.yaml',
        line: 19,
        column: 15,
        path: '/namespaces/1/patterns/1/type',
        hint: 'expected one of: keyvalue, producer, consumer, session-manager, mailbox',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('kv');
  });

  it('points at values in the third pattern of a later document', () => {
    const second = validNamespace({
      namespace: 'payments',
      patterns: [
        keyvaluePattern({ name: 'a1' }),
        keyvaluePattern({ name: 'b2' }),
        keyvaluePattern({ name: 'c3', slots: { store: { backend: 'kafka' } } }),
      ],
    });
    const text = toYaml(validNamespace(), second);
    const { diagnostics } = check(text);
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.path])).toEqual([
      ['E_BACKEND_CAPABILITY', 27, 18, '/patterns/2/slots/store/backend'],
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('kafka');
  });

  it('points into flow-style collections', () => {
    const text = [
      'namespace: orders',
      'team: commerce',
      'patterns: [{ name: cache, type: keyvalue, slots: { store: { backend: mongo } } }]',
      'access: { consumers: [{ subject: "group:billing", permissions: [read, reed] }] }',
      '',
    ].join('\n');
    const { diagnostics } = check(text);
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, textAt(text, d).slice(0, 5)])).toEqual([
      ['E_BACKEND_UNKNOWN', 3, 70, 'mongo'],
      ['E_SCHEMA_ENUM', 4, 71, 'reed]'],
    ]);
  });

  it('counts columns in characters on lines with multi-byte text', () => {
    const text =
      'namespace: orders\nteam: commerce\ndescription: "Zürich — 注文"\nneeds: { durability: stronk }\npatterns: [{ name: cache, type: keyvalue }]\n';
    const { diagnostics } = check(text);
    expect(diagnostics.map((d) => [d.rule, d.line, d.column])).toEqual([
      ['E_SCHEMA_ENUM', 4, 22],
      ['E_SLOT_UNBOUND', 5, 12],
    ]);
  });

  it('locates a key and its value separately', () => {
    const text = toYaml(validNamespace());
    const [doc] = parseNamespaceSource(source(text)).namespaces;
    expect(doc!.locate(['patterns', 0, 'slots', 'store', 'backend'])).toEqual({ line: 8, column: 18 });
    expect(doc!.locate(['patterns', 0, 'slots', 'store'], { key: true })).toEqual({ line: 7, column: 7 });
    expect(doc!.pointer(['patterns', 0, 'slots', 'dead-letter'])).toBe('/patterns/0/slots/dead-letter');
  });

  it('falls back to the deepest existing node for a path that does not exist', () => {
    const [doc] = parseNamespaceSource(source(toYaml(validNamespace()))).namespaces;
    expect(doc!.locate(['patterns', 0, 'settings', 'topic'])).toEqual({ line: 4, column: 5 });
  });

  it('escapes JSON pointer characters in slot names', () => {
    const [doc] = parseNamespaceSource(source(toYaml(validNamespace()))).namespaces;
    expect(doc!.pointer(['metadata', 'a/b~c'])).toBe('/metadata/a~1b~0c');
  });
});

/** One file with a problem of many kinds. */
const MANY_PROBLEMS = [
  'namespace: Orders',
  'team: commerce',
  'descripton: Orders and their events',
  'needs: { durability: stronk, retention: 7 days }',
  'patterns:',
  '  - name: cache',
  '    type: keyvalue',
  '    slots:',
  '      store: { backend: nats, credentials: hunter2 }',
  '    settings: { default_ttl: 15x }',
  '  - name: cache',
  '    type: consumer',
  '    slots:',
  '      source: { backend: kafka }',
  '      dead-letter: { backend: sqlite }',
  '  - name: feed',
  '    type: streamer',
  'auth:',
  '  enabled: true',
  '  issuer: http://login.example.com',
  '',
].join('\n');

describe('every problem at once', () => {
  it('reports all the distinct problems of one file in one run, in source order', () => {
    const { diagnostics, report } = check(MANY_PROBLEMS);
    expect(diagnostics.map((d) => [d.line, d.column, d.severity, d.rule])).toEqual([
      [1, 12, 'error', 'E_NAMESPACE_NAME'],
      [3, 1, 'error', 'E_SCHEMA_UNKNOWN_KEY'],
      [4, 22, 'error', 'E_SCHEMA_ENUM'],
      [4, 41, 'error', 'E_DURATION'],
      [9, 25, 'error', 'E_BACKEND_CAPABILITY'],
      [9, 44, 'warning', 'E_CREDENTIALS_LITERAL'],
      [10, 30, 'error', 'E_DURATION'],
      [11, 5, 'error', 'E_SETTING_REQUIRED'],
      [11, 5, 'error', 'E_SETTING_REQUIRED'],
      [11, 11, 'error', 'E_PATTERN_DUPLICATE'],
      [15, 31, 'error', 'E_BACKEND_CAPABILITY'],
      [17, 11, 'error', 'E_PATTERN_TYPE'],
      [19, 12, 'error', 'E_AUTH_AUDIENCES'],
      [20, 11, 'error', 'E_AUTH_ISSUER_INSECURE'],
    ]);
    expect(report).toMatchObject({ valid: false, errors: 13, warnings: 1 });
    expect(JSON.stringify(report)).not.toContain('hunter2');
  });

  it('reports the same problems when the file takes the anchor-safe parsing path', () => {
    // A file mentioning anchor or alias characters is parsed with the yaml package alone (bounded
    // alias expansion); others get their values from js-yaml. Both must agree on every diagnostic.
    const slow = check(MANY_PROBLEMS + '# R&D owns *this* file\n').diagnostics;
    expect(slow).toEqual(check(MANY_PROBLEMS).diagnostics);
  });

  it('reports the same problems for a `namespaces:` list on either parsing path', () => {
    const list = toYaml({ namespaces: [validNamespace({ team: 'X' }), validNamespace()] });
    const fast = check(list).diagnostics;
    expect(fast.map((d) => d.rule)).toEqual(['E_TEAM_NAME', 'E_NAMESPACE_DUPLICATE']);
    expect(check(list + '# a&b\n').diagnostics).toEqual(fast);
  });
});
