import { describe, expect, it } from 'vitest';
import { check, keyvaluePattern, producerPattern, textAt, validNamespace } from '../../support/factories.js';

describe('unknown keys', () => {
  it('rejects an unknown top-level key and suggests the one that was meant', () => {
    const { diagnostics, text } = check(validNamespace({ need: { durability: 'strong' } }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'need' in the namespace",
        file: 'ns.yaml',
        line: 9,
        column: 1,
        path: '/need',
        hint: "did you mean 'needs'?",
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('need:');
  });

  it('lists the allowed keys when an unknown key is not close to any', () => {
    const { diagnostics } = check(validNamespace({ labels: { tier: 'gold' } }));
    expect(diagnostics.map((d) => [d.rule, d.hint])).toEqual([
      [
        'E_SCHEMA_UNKNOWN_KEY',
        'expected one of: namespace, team, description, needs, patterns, auth, access, metadata, isolation',
      ],
    ]);
  });

  it('rejects an unknown key inside a pattern, at the key', () => {
    const { diagnostics, text } = check(
      validNamespace({ patterns: [keyvaluePattern({ setting: { default_ttl: '15m' } })] }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'setting' in patterns[0]",
        file: 'ns.yaml',
        line: 9,
        column: 5,
        path: '/patterns/0/setting',
        hint: "did you mean 'settings'?",
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('setting:');
  });

  it('rejects a misspelt setting as an unknown key of the settings', () => {
    const { diagnostics } = check(
      validNamespace({ patterns: [keyvaluePattern({ settings: { default_tll: '15m' } })] }),
    );
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message, d.hint])).toEqual([
      [
        'E_SCHEMA_UNKNOWN_KEY',
        10,
        7,
        "unknown key 'default_tll' in patterns[0].settings",
        "did you mean 'default_ttl'?",
      ],
    ]);
  });

  it('rejects an unknown key in a slot binding without echoing its value', () => {
    const pattern = keyvaluePattern({ slots: { store: { backend: 'redis', password: 'hunter2' } } });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message])).toEqual([
      ['E_SCHEMA_UNKNOWN_KEY', 9, 9, "unknown key 'password' in patterns[0].slots.store"],
    ]);
    expect(JSON.stringify(diagnostics)).not.toContain('hunter2');
  });
});

describe('required keys', () => {
  it('rejects a namespace without a name, pointing at the start of the document', () => {
    const { diagnostics } = check(validNamespace({ namespace: undefined }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_REQUIRED',
        message: "the namespace is missing required key 'namespace'",
        file: 'ns.yaml',
        line: 1,
        column: 1,
        path: '',
        hint: 'add `namespace: ...`',
      },
    ]);
  });

  it('rejects a namespace without a team', () => {
    const { diagnostics } = check(validNamespace({ team: undefined }));
    expect(diagnostics.map((d) => [d.rule, d.message])).toEqual([
      ['E_SCHEMA_REQUIRED', "the namespace is missing required key 'team'"],
    ]);
  });

  it('rejects a pattern without a type, pointing at the pattern', () => {
    const { diagnostics, text } = check(validNamespace({ patterns: [keyvaluePattern({ type: undefined })] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_REQUIRED',
        message: "patterns[0] is missing required key 'type'",
        file: 'ns.yaml',
        line: 4,
        column: 5,
        path: '/patterns/0',
        hint: 'add `type: ...`',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('name: cache');
  });

  it('rejects an empty team as missing (and as not a valid name)', () => {
    const { diagnostics } = check(validNamespace({ team: '' }));
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message])).toEqual([
      ['E_SCHEMA_REQUIRED', 2, 7, 'team must not be empty'],
      ['E_TEAM_NAME', 2, 7, "team '' is not a valid name"],
    ]);
  });

  it('rejects an access grant without a subject', () => {
    const { diagnostics } = check(validNamespace({ access: { consumers: [{ permissions: ['read'] }] } }));
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message])).toEqual([
      ['E_SCHEMA_REQUIRED', 11, 7, "access.consumers[0] is missing required key 'subject'"],
    ]);
  });
});

describe('types', () => {
  it('rejects patterns written as a mapping', () => {
    const { diagnostics } = check(validNamespace({ patterns: { cache: keyvaluePattern() } }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_TYPE',
        message: 'patterns must be a list, found a mapping',
        file: 'ns.yaml',
        line: 4,
        column: 3,
        path: '/patterns',
        hint: 'write a list: `- item`',
      },
    ]);
  });

  it.each([
    ['needs.write_rps', { needs: { write_rps: '500' } }, 'an integer, found a string', 'write an integer'],
    ['auth.enabled', { auth: { enabled: 'yes' } }, 'a boolean, found a string', 'write a boolean'],
    [
      'metadata.cost-center',
      { metadata: { 'cost-center': 1234 } },
      'a string, found an integer',
      'quote the value',
    ],
    ['description', { description: ['orders'] }, 'a string, found a list', 'quote the value'],
  ])('rejects %s of the wrong type', (where, overrides, found, hint) => {
    const { diagnostics } = check(validNamespace(overrides));
    expect(diagnostics.map((d) => [d.rule, d.message, d.hint])).toEqual([
      ['E_SCHEMA_TYPE', `${where} must be ${found}`, hint],
    ]);
  });

  it('gives an example for a name of the wrong type', () => {
    const { diagnostics } = check(validNamespace({ namespace: 42 }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_TYPE',
        message: 'namespace must be a string, found an integer',
        file: 'ns.yaml',
        line: 1,
        column: 12,
        path: '/namespace',
        hint: 'for example: orders',
      },
    ]);
  });

  it('rejects a document that is not a mapping', () => {
    const { diagnostics } = check('- namespace: orders\n');
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_TYPE',
        message: 'a namespace document must be a mapping, found a list',
        file: 'ns.yaml',
        line: 1,
        column: 1,
        path: '',
        hint: 'start the document with `namespace: <name>`',
      },
    ]);
  });

  it('still checks the rest of a pattern whose slots have the wrong type', () => {
    const { diagnostics } = check(validNamespace({ patterns: [keyvaluePattern({ slots: 'redis' })] }));
    expect(diagnostics.map((d) => [d.rule, d.path])).toEqual([
      ['E_SLOT_UNBOUND', '/patterns/0'],
      ['E_SCHEMA_TYPE', '/patterns/0/slots'],
    ]);
  });
});

describe('enums', () => {
  it('rejects an unknown durability with a suggestion', () => {
    const { diagnostics, text } = check(validNamespace({ needs: { durability: 'stronk' } }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_ENUM',
        message: "needs.durability has unknown value 'stronk'",
        file: 'ns.yaml',
        line: 10,
        column: 15,
        path: '/needs/durability',
        hint: "did you mean 'strong'?",
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('stronk');
  });

  it('lists the values when an unknown consistency is not close to any', () => {
    const { diagnostics } = check(validNamespace({ needs: { consistency: 'linearizable' } }));
    expect(diagnostics.map((d) => [d.rule, d.hint])).toEqual([
      ['E_SCHEMA_ENUM', 'expected one of: strong, eventual'],
    ]);
  });

  it('rejects an unknown permission inside a list, at the item', () => {
    const access = { consumers: [{ subject: 'group:billing', permissions: ['read', 'wirte'] }] };
    const { diagnostics, text } = check(validNamespace({ access }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_ENUM',
        message: "access.consumers[0].permissions[1] has unknown value 'wirte'",
        file: 'ns.yaml',
        line: 14,
        column: 11,
        path: '/access/consumers/0/permissions/1',
        hint: "did you mean 'write'?",
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('wirte');
  });

  it.each(['strong', 'eventual', 'best-effort'])('accepts the durability %s', (durability) => {
    expect(check(validNamespace({ needs: { durability } })).diagnostics).toEqual([]);
  });
});

describe('formats', () => {
  it('rejects an access subject that is neither group: nor user:', () => {
    const access = { consumers: [{ subject: 'team:billing', permissions: ['read'] }] };
    const { diagnostics, text } = check(validNamespace({ access }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_PATTERN',
        message: "access.consumers[0].subject 'team:billing' has the wrong format",
        file: 'ns.yaml',
        line: 11,
        column: 16,
        path: '/access/consumers/0/subject',
        hint: "for example 'group:billing'",
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('team:billing');
  });

  it.each(['group:billing', 'user:ana@example.com'])('accepts the subject %s', (subject) => {
    const access = { consumers: [{ subject, permissions: ['read', 'write'] }] };
    expect(check(validNamespace({ access })).diagnostics).toEqual([]);
  });

  it('rejects a topic with a space', () => {
    const { diagnostics } = check(
      validNamespace({ patterns: [producerPattern({ settings: { topic: 'orders events' } })] }),
    );
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message, d.hint])).toEqual([
      [
        'E_SCHEMA_PATTERN',
        10,
        14,
        "patterns[0].settings.topic 'orders events' has the wrong format",
        "for example 'orders.events'",
      ],
    ]);
  });

  it('rejects a version that is not vN both as a format and as an unregistered version', () => {
    const { diagnostics } = check(validNamespace({ patterns: [keyvaluePattern({ version: 'latest' })] }));
    expect(diagnostics.map((d) => [d.rule, d.line, d.column])).toEqual([
      ['E_PATTERN_VERSION', 9, 14],
      ['E_SCHEMA_PATTERN', 9, 14],
    ]);
  });
});

describe('ranges', () => {
  it('rejects a negative rate', () => {
    const { diagnostics, text } = check(validNamespace({ needs: { write_rps: -1 } }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_RANGE',
        message: 'needs.write_rps must be at least 0, found -1',
        file: 'ns.yaml',
        line: 10,
        column: 14,
        path: '/needs/write_rps',
        hint: 'use a value at least 0',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('-1');
  });

  it('rejects a rate beyond 32 bits at the value and still checks the rest of the namespace', () => {
    const { diagnostics } = check(
      validNamespace({
        patterns: [keyvaluePattern({ slots: { store: { backend: 'nats' } } })],
        needs: { read_rps: 5_000_000_000 },
      }),
    );
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message])).toEqual([
      ['E_BACKEND_CAPABILITY', 8, 18, expect.stringContaining("backend 'nats' cannot fill slot 'store'")],
      ['E_SCHEMA_RANGE', 10, 13, 'needs.read_rps must be at most 4294967295, found 5000000000'],
    ]);
  });

  it('accepts rates of 0 and 4294967295', () => {
    expect(check(validNamespace({ needs: { write_rps: 0, read_rps: 4294967295 } })).diagnostics).toEqual([]);
  });
});

describe('minimum list lengths', () => {
  it('rejects a namespace with an empty pattern list', () => {
    const { diagnostics } = check(validNamespace({ patterns: [] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_MIN_ITEMS',
        message: 'patterns needs at least 1 item',
        file: 'ns.yaml',
        line: 3,
        column: 11,
        path: '/patterns',
        hint: 'add an item',
      },
    ]);
  });

  it('rejects a grant with no permissions', () => {
    const access = { consumers: [{ subject: 'group:billing', permissions: [] }] };
    const { diagnostics } = check(validNamespace({ access }));
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message])).toEqual([
      ['E_SCHEMA_MIN_ITEMS', 12, 20, 'access.consumers[0].permissions needs at least 1 item'],
    ]);
  });

  it('rejects an empty namespaces list', () => {
    const { diagnostics } = check('namespaces: []\n');
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_MIN_ITEMS',
        message: '`namespaces:` needs at least 1 item',
        file: 'ns.yaml',
        line: 1,
        column: 13,
        path: '/namespaces',
        hint: 'add an item',
      },
    ]);
  });
});
