import { describe, expect, it } from 'vitest';
import {
  check,
  consumerPattern,
  keyvaluePattern,
  producerPattern,
  sessionManagerPattern,
  textAt,
  validNamespace,
  type Obj,
} from '../../support/factories.js';

const DURATION_HINT = 'write a number and a unit: 250ms, 30s, 15m, 12h, 7d';

describe('which settings apply', () => {
  it('rejects a setting of another pattern type, listing the settings of this one', () => {
    const { diagnostics, text } = check(
      validNamespace({ patterns: [keyvaluePattern({ settings: { topic: 'orders.events' } })] }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SETTING_NOT_APPLICABLE',
        message: "setting 'topic' does not apply to keyvalue",
        file: 'ns.yaml',
        line: 10,
        column: 7,
        path: '/patterns/0/settings/topic',
        hint: 'settings of keyvalue: default_ttl, max_value_size',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('topic: orders.events');
  });

  it.each<[string, (o: Obj) => Obj, Obj]>([
    ['keyvalue', keyvaluePattern, { default_ttl: '15m', max_value_size: '1MiB' }],
    [
      'producer',
      producerPattern,
      {
        topic: 'orders.events',
        max_retries: 3,
        batch_size: 100,
        batch_interval: '10ms',
        dedup_window: '5m',
        max_message_size: '256KiB',
      },
    ],
    [
      'consumer',
      consumerPattern,
      {
        topic: 'orders.events',
        consumer_group: 'billing',
        max_retries: 3,
        ack_timeout: '30s',
        dead_letter_topic: 'orders.failed',
      },
    ],
    ['session-manager', sessionManagerPattern, { session_ttl: '1h', idle_timeout: '15m' }],
  ])('accepts every setting of %s', (_type, pattern, settings) => {
    const slots =
      _type === 'producer'
        ? { sink: { backend: 'kafka' }, state: { backend: 'redis' } }
        : _type === 'consumer'
          ? { source: { backend: 'kafka' }, 'dead-letter': { backend: 'kafka' } }
          : undefined;
    const { diagnostics } = check(
      validNamespace({ patterns: [pattern({ settings, ...(slots ? { slots } : {}) })] }),
    );
    expect(diagnostics).toEqual([]);
  });
});

describe('required settings', () => {
  it('rejects a consumer without a consumer group, pointing at its settings', () => {
    const { diagnostics, text } = check(
      validNamespace({ patterns: [consumerPattern({ settings: { topic: 'orders.events' } })] }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SETTING_REQUIRED',
        message: "pattern 'billing' (consumer) needs setting 'consumer_group'",
        file: 'ns.yaml',
        line: 10,
        column: 7,
        path: '/patterns/0/settings',
        hint: 'add `settings: { consumer_group: ... }`',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('topic: orders.events');
  });

  it('rejects a consumer without settings once per missing setting, pointing at the pattern', () => {
    const { diagnostics } = check(validNamespace({ patterns: [consumerPattern({ settings: undefined })] }));
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.path, d.message])).toEqual([
      ['E_SETTING_REQUIRED', 4, 5, '/patterns/0', "pattern 'billing' (consumer) needs setting 'topic'"],
      [
        'E_SETTING_REQUIRED',
        4,
        5,
        '/patterns/0',
        "pattern 'billing' (consumer) needs setting 'consumer_group'",
      ],
    ]);
  });

  it('rejects a producer without a topic', () => {
    const { diagnostics } = check(
      validNamespace({ patterns: [producerPattern({ settings: { max_retries: 3 } })] }),
    );
    expect(diagnostics.map((d) => [d.rule, d.message])).toEqual([
      ['E_SETTING_REQUIRED', "pattern 'events' (producer) needs setting 'topic'"],
    ]);
  });
});

describe('settings that need a slot', () => {
  it('rejects a producer deduplication window without a state slot to remember message ids', () => {
    const pattern = producerPattern({ settings: { topic: 'orders.events', dedup_window: '5m' } });
    const { diagnostics, text } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SETTING_NEEDS_SLOT',
        message:
          "pattern 'events' (producer) sets dedup_window but binds no 'state' slot to remember message ids",
        file: 'ns.yaml',
        line: 11,
        column: 7,
        path: '/patterns/0/settings/dedup_window',
        hint: 'add `slots: { state: { backend: redis } }` or remove dedup_window',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('dedup_window: 5m');
  });

  it('accepts a producer deduplication window with a state slot', () => {
    const pattern = producerPattern({
      slots: { sink: { backend: 'kafka' }, state: { backend: 'redis' } },
      settings: { topic: 'orders.events', dedup_window: '5m' },
    });
    expect(check(validNamespace({ patterns: [pattern] })).diagnostics).toEqual([]);
  });

  it("refuses a consumer's dead_letter_topic without a dead-letter slot to write to", () => {
    const pattern = consumerPattern({
      settings: { topic: 'orders.events', consumer_group: 'billing', dead_letter_topic: 'orders.failed' },
    });
    const { diagnostics, text } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SETTING_NEEDS_SLOT',
        message:
          "pattern 'billing' (consumer) sets dead_letter_topic but binds no 'dead-letter' slot to write failed messages to",
        file: 'ns.yaml',
        line: 12,
        column: 7,
        path: '/patterns/0/settings/dead_letter_topic',
        hint: 'add `slots: { dead-letter: { backend: kafka } }` or remove dead_letter_topic',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('dead_letter_topic: orders.failed');
  });

  it.each(['orders failed', 'orders.*'])('rejects the dead_letter_topic %j by the topic syntax', (topic) => {
    const pattern = consumerPattern({
      slots: { source: { backend: 'kafka' }, 'dead-letter': { backend: 'kafka' } },
      settings: { topic: 'orders.events', consumer_group: 'billing', dead_letter_topic: topic },
    });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.path])).toEqual([
      ['E_SCHEMA_PATTERN', '/patterns/0/settings/dead_letter_topic'],
    ]);
  });

  it('reports only that dedup_window does not apply to a consumer, not that it needs a slot', () => {
    const pattern = consumerPattern({
      settings: { topic: 'orders.events', consumer_group: 'billing', dedup_window: '5m' },
    });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.path])).toEqual([
      ['E_SETTING_NOT_APPLICABLE', '/patterns/0/settings/dedup_window'],
    ]);
  });
});

describe('numbers', () => {
  it.each([
    [-1, 'at least', 0],
    [101, 'at most', 100],
  ])('rejects max_retries %d', (value, relation, limit) => {
    const pattern = producerPattern({ settings: { topic: 'orders.events', max_retries: value } });
    const { diagnostics, text } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SCHEMA_RANGE',
        message: `patterns[0].settings.max_retries must be ${relation} ${limit}, found ${value}`,
        file: 'ns.yaml',
        line: 11,
        column: 20,
        path: '/patterns/0/settings/max_retries',
        hint: `use a value ${relation} ${limit}`,
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe(String(value));
  });

  it.each([0, 100])('accepts max_retries %d', (value) => {
    const pattern = consumerPattern({
      settings: { topic: 'orders.events', consumer_group: 'billing', max_retries: value },
    });
    expect(check(validNamespace({ patterns: [pattern] })).diagnostics).toEqual([]);
  });

  it('rejects a batch size of 0', () => {
    const pattern = producerPattern({ settings: { topic: 'orders.events', batch_size: 0 } });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.message])).toEqual([
      ['E_SCHEMA_RANGE', 'patterns[0].settings.batch_size must be at least 1, found 0'],
    ]);
  });
});

describe('durations', () => {
  it.each<[string, (o: Obj) => Obj, Obj]>([
    ['default_ttl', keyvaluePattern, {}],
    ['batch_interval', producerPattern, { topic: 'orders.events' }],
    ['ack_timeout', consumerPattern, { topic: 'orders.events', consumer_group: 'billing' }],
    ['session_ttl', sessionManagerPattern, {}],
    ['idle_timeout', sessionManagerPattern, {}],
  ])('rejects %s written as "15 minutes"', (setting, pattern, required) => {
    const { diagnostics, text } = check(
      validNamespace({ patterns: [pattern({ settings: { ...required, [setting]: '15 minutes' } })] }),
    );
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({
      severity: 'error',
      rule: 'E_DURATION',
      message: `patterns[0].settings.${setting} '15 minutes' is not a duration`,
      path: `/patterns/0/settings/${setting}`,
      hint: DURATION_HINT,
    });
    expect(textAt(text, diagnostics[0]!)).toBe('15 minutes');
  });

  it('rejects a retention without a unit, at its position', () => {
    const { diagnostics } = check(validNamespace({ needs: { retention: '7' } }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_DURATION',
        message: "needs.retention '7' is not a duration",
        file: 'ns.yaml',
        line: 10,
        column: 14,
        path: '/needs/retention',
        hint: DURATION_HINT,
      },
    ]);
  });

  it.each(['250ms', '30s', '15m', '12h', '7d', 'forever'])('accepts the retention %s', (retention) => {
    expect(check(validNamespace({ needs: { retention } })).diagnostics).toEqual([]);
  });

  it('rejects "forever" as a TTL, where it is not a duration', () => {
    const { diagnostics } = check(
      validNamespace({ patterns: [keyvaluePattern({ settings: { default_ttl: 'forever' } })] }),
    );
    expect(diagnostics.map((d) => d.rule)).toEqual(['E_DURATION']);
  });
});

describe('sizes', () => {
  it('rejects a size with a space before its unit', () => {
    const { diagnostics, text } = check(
      validNamespace({ patterns: [keyvaluePattern({ settings: { max_value_size: '1 MB' } })] }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SIZE',
        message: "patterns[0].settings.max_value_size '1 MB' is not a size",
        file: 'ns.yaml',
        line: 10,
        column: 23,
        path: '/patterns/0/settings/max_value_size',
        hint: 'write a number and an optional unit: 512KiB, 1MiB, 1000000',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('1 MB');
  });

  it('rejects a maximum value size of zero', () => {
    const { diagnostics } = check(
      validNamespace({ patterns: [keyvaluePattern({ settings: { max_value_size: '0KiB' } })] }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SIZE',
        message: "pattern 'cache' (keyvalue) max_value_size must be larger than 0",
        file: 'ns.yaml',
        line: 10,
        column: 23,
        path: '/patterns/0/settings/max_value_size',
        hint: 'for example 1MiB',
      },
    ]);
  });

  it('rejects a maximum message size of zero', () => {
    const pattern = producerPattern({ settings: { topic: 'orders.events', max_message_size: '0B' } });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.severity, d.message, d.path, d.hint])).toEqual([
      [
        'E_SIZE',
        'error',
        "pattern 'events' (producer) max_message_size must be larger than 0",
        '/patterns/0/settings/max_message_size',
        'for example 256KiB',
      ],
    ]);
  });

  it.each(['1000000', '512B', '512KB', '512KiB', '1MB', '1MiB', '1GB', '1GiB'])(
    'accepts the size %s',
    (size) => {
      const { diagnostics } = check(
        validNamespace({ patterns: [keyvaluePattern({ settings: { max_value_size: size } })] }),
      );
      expect(diagnostics).toEqual([]);
    },
  );
});

describe("a producer's max_message_size against its sink backend's limit", () => {
  const producer = (backend: string, size: string) =>
    validNamespace({
      patterns: [
        producerPattern({
          slots: { sink: { backend } },
          settings: { topic: 'orders.events', max_message_size: size },
        }),
      ],
    });

  it.each([
    ['kafka', "the broker's default message.max.bytes"],
    ['nats', "the server's default max_payload"],
  ])('warns when it is above the limit of %s, naming the limit', (backend, source) => {
    const { diagnostics, report, text } = check(producer(backend, '2MiB'));
    expect(report.errors).toBe(0);
    expect(diagnostics).toEqual([
      {
        severity: 'warning',
        rule: 'E_MESSAGE_SIZE_ABOVE_BACKEND',
        message: `pattern 'events' (producer) max_message_size 2MiB is above ${backend}'s limit of 1MiB (${source}): a payload between the two is refused by ${backend} with RESOURCE_EXHAUSTED`,
        file: 'ns.yaml',
        line: 11,
        column: 25,
        path: '/patterns/0/settings/max_message_size',
        hint: `lower max_message_size to 1MiB or less, or keep it if your ${backend} allows larger messages`,
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('2MiB');
  });

  it.each([
    ['kafka', '1MiB'],
    ['nats', '1048576'],
    ['redis', '3MiB'],
    ['postgres', '3MiB'],
    ['memstore', '3MiB'],
  ])('accepts it on %s at %s, within the limit', (backend, size) => {
    expect(check(producer(backend, size)).diagnostics).toEqual([]);
  });
});
