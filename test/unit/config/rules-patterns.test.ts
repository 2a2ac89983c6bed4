import { describe, expect, it } from 'vitest';
import {
  check,
  consumerPattern,
  keyvaluePattern,
  producerPattern,
  sessionManagerPattern,
  textAt,
  validNamespace,
  withRule,
  type Obj,
} from '../../support/factories.js';

describe('pattern type and version', () => {
  it('rejects an unknown pattern type with a suggestion', () => {
    const { diagnostics, text } = check(validNamespace({ patterns: [keyvaluePattern({ type: 'keyvalu' })] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_PATTERN_TYPE',
        message: "unknown pattern type 'keyvalu'",
        file: 'ns.yaml',
        line: 5,
        column: 11,
        path: '/patterns/0/type',
        hint: "did you mean 'keyvalue'?",
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('keyvalu');
  });

  it('lists the pattern types when an unknown type is not close to any', () => {
    const { diagnostics } = check(validNamespace({ patterns: [keyvaluePattern({ type: 'graph' })] }));
    expect(diagnostics.map((d) => [d.rule, d.hint])).toEqual([
      ['E_PATTERN_TYPE', 'expected one of: keyvalue, producer, consumer, session-manager, mailbox'],
    ]);
  });

  it.each(['keyvalue', 'producer', 'consumer', 'session-manager'])('accepts the pattern type %s', (type) => {
    const patterns: Record<string, Obj> = {
      keyvalue: keyvaluePattern(),
      producer: producerPattern(),
      consumer: consumerPattern(),
      'session-manager': sessionManagerPattern(),
    };
    expect(check(validNamespace({ patterns: [patterns[type]!] })).diagnostics).toEqual([]);
  });

  it('rejects a pattern version that is not registered', () => {
    const { diagnostics, text } = check(validNamespace({ patterns: [keyvaluePattern({ version: 'v2' })] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_PATTERN_VERSION',
        message: "keyvalue has no version 'v2'",
        file: 'ns.yaml',
        line: 9,
        column: 14,
        path: '/patterns/0/version',
        hint: 'registered versions: v1',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('v2');
  });

  it('accepts a registered pattern version', () => {
    expect(check(validNamespace({ patterns: [keyvaluePattern({ version: 'v1' })] })).diagnostics).toEqual([]);
  });
});

describe('slots', () => {
  it('rejects a pattern whose required slot is not bound, pointing at its slots', () => {
    const { diagnostics, text } = check(validNamespace({ patterns: [producerPattern({ slots: {} })] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SLOT_UNBOUND',
        message: "pattern 'events' (producer) requires slot 'sink'",
        file: 'ns.yaml',
        line: 6,
        column: 12,
        path: '/patterns/0/slots',
        hint: 'add `slots: { sink: { backend: memstore } }`',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('{}');
  });

  it('points at the pattern when it has no slots at all', () => {
    const { diagnostics } = check(validNamespace({ patterns: [keyvaluePattern({ slots: undefined })] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SLOT_UNBOUND',
        message: "pattern 'cache' (keyvalue) requires slot 'store'",
        file: 'ns.yaml',
        line: 4,
        column: 5,
        path: '/patterns/0',
        hint: 'add `slots: { store: { backend: memstore } }`',
      },
    ]);
  });

  it('rejects a misspelt slot with a suggestion, and the required slot it leaves unbound', () => {
    const { diagnostics, text } = check(
      validNamespace({ patterns: [keyvaluePattern({ slots: { stor: { backend: 'redis' } } })] }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SLOT_UNBOUND',
        message: "pattern 'cache' (keyvalue) requires slot 'store'",
        file: 'ns.yaml',
        line: 7,
        column: 7,
        path: '/patterns/0/slots',
        hint: 'add `slots: { store: { backend: memstore } }`',
      },
      {
        severity: 'error',
        rule: 'E_SLOT_UNKNOWN',
        message: "keyvalue has no slot 'stor'",
        file: 'ns.yaml',
        line: 7,
        column: 7,
        path: '/patterns/0/slots/stor',
        hint: "did you mean 'store'?",
      },
    ]);
    expect(textAt(text, diagnostics[1]!)).toBe('stor:');
  });

  it('lists the slots of the type when an undeclared slot is not close to any', () => {
    const pattern = producerPattern({
      slots: { sink: { backend: 'kafka' }, archive: { backend: 'postgres' } },
    });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message, d.hint])).toEqual([
      ['E_SLOT_UNKNOWN', 9, 7, "producer has no slot 'archive'", 'expected one of: sink, state, objects'],
    ]);
  });

  it("refuses a producer's state slot without dedup_window, which would hold nothing", () => {
    const pattern = producerPattern({ slots: { sink: { backend: 'kafka' }, state: { backend: 'redis' } } });
    const { diagnostics, text } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SLOT_UNUSED',
        message:
          "pattern 'events' (producer) binds slot 'state' but sets no dedup_window: the producer keeps only deduplication state there, so the slot would do nothing",
        file: 'ns.yaml',
        line: 9,
        column: 7,
        path: '/patterns/0/slots/state',
        hint: 'set `dedup_window` (for example 5m) or remove the state slot',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('state:');
  });

  it('accepts every optional slot of a type bound to a backend that fits', () => {
    const producer = producerPattern({
      slots: { sink: { backend: 'kafka' }, state: { backend: 'redis' } },
      settings: { topic: 'orders.events', dedup_window: '5m' },
    });
    const consumer = consumerPattern({
      slots: {
        source: { backend: 'nats' },
        state: { backend: 'sqlite' },
        'dead-letter': { backend: 'kafka' },
      },
    });
    expect(check(validNamespace({ patterns: [producer, consumer] })).diagnostics).toEqual([]);
  });

  it('accepts a slot without a backend, which the control plane fills from needs', () => {
    const pattern = keyvaluePattern({ slots: { store: {} } });
    expect(
      check(validNamespace({ needs: { durability: 'strong' }, patterns: [pattern] })).diagnostics,
    ).toEqual([]);
  });
});

describe('backends', () => {
  it('rejects an unknown backend, listing the known ones', () => {
    const { diagnostics, text } = check(
      validNamespace({ patterns: [keyvaluePattern({ slots: { store: { backend: 'mongo' } } })] }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_BACKEND_UNKNOWN',
        message: "unknown backend 'mongo'",
        file: 'ns.yaml',
        line: 8,
        column: 18,
        path: '/patterns/0/slots/store/backend',
        hint: 'expected one of: memstore, sqlite, redis, postgres, nats, kafka, filesystem, s3',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('mongo');
  });

  it('suggests the backend a typo was meant to be', () => {
    const { diagnostics } = check(
      validNamespace({ patterns: [keyvaluePattern({ slots: { store: { backend: 'reddis' } } })] }),
    );
    expect(diagnostics.map((d) => [d.rule, d.hint])).toEqual([
      ['E_BACKEND_UNKNOWN', "did you mean 'redis'?"],
    ]);
  });

  it('rejects a backend that does not implement what the slot needs, naming those that do', () => {
    const { diagnostics, text } = check(
      validNamespace({ patterns: [keyvaluePattern({ slots: { store: { backend: 'nats' } } })] }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_BACKEND_CAPABILITY',
        message:
          "backend 'nats' cannot fill slot 'store' of keyvalue: the slot needs keyvalue, nats implements pubsub, queue",
        file: 'ns.yaml',
        line: 8,
        column: 18,
        path: '/patterns/0/slots/store/backend',
        hint: 'use one of: memstore, sqlite, redis, postgres',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('nats');
  });

  // DESIGN.md §4: which backend may fill which slot.
  const FITS: Array<[type: string, slot: string, backends: string[]]> = [
    ['keyvalue', 'store', ['memstore', 'sqlite', 'redis', 'postgres']],
    ['producer', 'sink', ['memstore', 'redis', 'postgres', 'nats', 'kafka']],
    ['producer', 'state', ['memstore', 'sqlite', 'redis', 'postgres']],
    ['consumer', 'source', ['memstore', 'redis', 'postgres', 'nats', 'kafka']],
    ['consumer', 'state', ['memstore', 'sqlite', 'redis', 'postgres']],
    ['consumer', 'dead-letter', ['memstore', 'redis', 'postgres', 'nats', 'kafka']],
    ['session-manager', 'store', ['memstore', 'sqlite', 'redis', 'postgres']],
  ];
  const ALL_BACKENDS = ['memstore', 'sqlite', 'redis', 'postgres', 'nats', 'kafka'];
  const base: Record<string, (o: Obj) => Obj> = {
    keyvalue: keyvaluePattern,
    producer: producerPattern,
    consumer: consumerPattern,
    'session-manager': sessionManagerPattern,
  };
  const REQUIRED: Record<string, string> = {
    keyvalue: 'store',
    producer: 'sink',
    consumer: 'source',
    'session-manager': 'store',
  };

  it.each(
    FITS.flatMap(([type, slot, fit]) => ALL_BACKENDS.map((b) => [type, slot, b, fit.includes(b)] as const)),
  )('%s slot %s on %s: accepted = %s', (type, slot, backend, accepted) => {
    const slots: Obj = { [REQUIRED[type]!]: { backend: 'memstore' }, [slot]: { backend } };
    // A producer's state slot holds deduplication state: it needs dedup_window (E_SLOT_UNUSED).
    const settings = type === 'producer' && slot === 'state' ? { dedup_window: '5m' } : {};
    const pattern = base[type]!({ slots });
    pattern.settings = { ...(pattern.settings as Obj), ...settings };
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(withRule(diagnostics, 'E_BACKEND_CAPABILITY')).toHaveLength(accepted ? 0 : 1);
    expect(diagnostics.filter((d) => d.rule !== 'E_BACKEND_CAPABILITY')).toEqual([]);
  });
});

describe('needs', () => {
  it('warns when strong durability is asked of a backend that loses data on restart', () => {
    const { diagnostics, report, text } = check(
      validNamespace({
        patterns: [keyvaluePattern({ slots: { store: { backend: 'memstore' } } })],
        needs: { durability: 'strong' },
      }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'warning',
        rule: 'E_NEEDS_DURABILITY',
        message: "needs.durability is strong but slot 'store' uses memstore, which loses data on restart",
        file: 'ns.yaml',
        line: 8,
        column: 18,
        path: '/patterns/0/slots/store/backend',
        hint: 'bind a durable backend or relax needs.durability',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('memstore');
    expect(report).toMatchObject({ valid: true, errors: 0, warnings: 1 });
  });

  it('accepts strong durability on a durable backend and memstore without strong durability', () => {
    const strong = validNamespace({ needs: { durability: 'strong' } });
    const relaxed = validNamespace({
      patterns: [keyvaluePattern({ slots: { store: { backend: 'memstore' } } })],
      needs: { durability: 'best-effort' },
    });
    expect(check(strong).diagnostics).toEqual([]);
    expect(check(relaxed).diagnostics).toEqual([]);
  });
});
