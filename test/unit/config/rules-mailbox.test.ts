/** Validation of the mailbox pattern: its slots, its settings and their rules and hints. */
import { describe, expect, it } from 'vitest';
import { BACKENDS, type BackendSpec } from '../../../src/config/registry.js';
import { validateSources } from '../../../src/config/validate.js';
import { check, mailboxPattern, textAt, toYaml, validNamespace } from '../../support/factories.js';

const EVERY_SETTING = {
  topic: 'orders.events',
  indexed_headers: ['order-id', 'region'],
  retention: '30d',
  max_messages: 1_000_000,
  max_message_size: '256KiB',
};

describe('mailbox pattern', () => {
  it.each(['sqlite', 'postgres'])('accepts every setting with its store on %s', (store) => {
    const pattern = mailboxPattern({
      slots: { source: { backend: 'kafka' }, store: { backend: store } },
      settings: EVERY_SETTING,
    });
    expect(check(validNamespace({ patterns: [pattern] })).diagnostics).toEqual([]);
  });

  it.each(['nats', 'redis', 'postgres', 'memstore'])('accepts a %s source', (source) => {
    const pattern = mailboxPattern({ slots: { source: { backend: source }, store: { backend: 'sqlite' } } });
    expect(check(validNamespace({ patterns: [pattern] })).diagnostics).toEqual([]);
  });

  it('accepts retention forever', () => {
    const pattern = mailboxPattern({ settings: { topic: 'orders.events', retention: 'forever' } });
    expect(check(validNamespace({ patterns: [pattern] })).diagnostics).toEqual([]);
  });

  it('refuses a store on a backend without the mailbox capability, naming the ones that have it', () => {
    const pattern = mailboxPattern({ slots: { source: { backend: 'kafka' }, store: { backend: 'redis' } } });
    const { diagnostics, text } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_BACKEND_CAPABILITY',
        message:
          "backend 'redis' cannot fill slot 'store' of mailbox: the slot needs mailbox, redis implements keyvalue, ttl, scan, pubsub, queue",
        file: 'ns.yaml',
        line: 10,
        column: 18,
        path: '/patterns/0/slots/store/backend',
        hint: 'use one of: sqlite, postgres',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('redis');
  });

  it('requires the source and store slots and the topic', () => {
    const pattern = mailboxPattern({ slots: {}, settings: { retention: '7d' } });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.message, d.hint])).toEqual([
      [
        'E_SLOT_UNBOUND',
        "pattern 'inbox' (mailbox) requires slot 'source'",
        'add `slots: { source: { backend: memstore } }`',
      ],
      [
        'E_SLOT_UNBOUND',
        "pattern 'inbox' (mailbox) requires slot 'store'",
        'add `slots: { store: { backend: sqlite } }`',
      ],
      [
        'E_SETTING_REQUIRED',
        "pattern 'inbox' (mailbox) needs setting 'topic'",
        'add `settings: { topic: ... }`',
      ],
    ]);
  });

  it('refuses a setting of another pattern type, listing the mailbox settings', () => {
    const pattern = mailboxPattern({ settings: { topic: 'orders.events', consumer_group: 'archive' } });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.path, d.hint])).toEqual([
      [
        'E_SETTING_NOT_APPLICABLE',
        '/patterns/0/settings/consumer_group',
        'settings of mailbox: topic, indexed_headers, retention, max_messages, max_message_size',
      ],
    ]);
  });

  it('refuses the mailbox settings on a consumer', () => {
    const { diagnostics } = check(
      validNamespace({
        patterns: [
          {
            name: 'billing',
            type: 'consumer',
            slots: { source: { backend: 'kafka' } },
            settings: { topic: 'orders.events', consumer_group: 'billing', indexed_headers: ['order-id'] },
          },
        ],
      }),
    );
    expect(diagnostics.map((d) => [d.rule, d.path])).toEqual([
      ['E_SETTING_NOT_APPLICABLE', '/patterns/0/settings/indexed_headers'],
    ]);
  });
});

describe('mailbox indexed_headers', () => {
  it('refuses a name that is not a header name, pointing at the item', () => {
    const pattern = mailboxPattern({
      settings: { topic: 'orders.events', indexed_headers: ['order-id', 'order id'] },
    });
    const { diagnostics, text } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_MAILBOX_HEADER',
        message: `pattern 'inbox' (mailbox) indexed_headers[1] "order id" is not a header name`,
        file: 'ns.yaml',
        line: 15,
        column: 11,
        path: '/patterns/0/settings/indexed_headers/1',
        hint: "use printable ASCII without spaces or ':', for example order-id",
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('order id');
  });

  it.each(['prism-message-id', 'Prism-Session-Tenant', 'traceparent'])(
    'refuses the envelope field %s, pointing to the built-in filters',
    (name) => {
      const pattern = mailboxPattern({ settings: { topic: 'orders.events', indexed_headers: [name] } });
      const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
      expect(diagnostics.map((d) => [d.rule, d.message, d.hint])).toEqual([
        [
          'E_MAILBOX_HEADER',
          `pattern 'inbox' (mailbox) indexed_headers[0] '${name}' is an envelope field, not a custom header`,
          'filter on message id, correlation id, subject or tenant with their own Query fields; index only custom headers',
        ],
      ]);
    },
  );

  it('refuses a header listed twice, pointing at the second', () => {
    const pattern = mailboxPattern({
      settings: { topic: 'orders.events', indexed_headers: ['region', 'order-id', 'region'] },
    });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.path, d.message])).toEqual([
      [
        'E_MAILBOX_HEADER',
        '/patterns/0/settings/indexed_headers/2',
        "pattern 'inbox' (mailbox) indexes header 'region' twice",
      ],
    ]);
  });
});

describe('mailbox limits', () => {
  it('refuses a retention that does not parse', () => {
    const pattern = mailboxPattern({ settings: { topic: 'orders.events', retention: '30 days' } });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.path])).toEqual([
      ['E_DURATION', '/patterns/0/settings/retention'],
    ]);
  });

  it('refuses a retention of zero, which would delete every message as it arrives', () => {
    const pattern = mailboxPattern({ settings: { topic: 'orders.events', retention: '0s' } });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.path, d.message, d.hint])).toEqual([
      [
        'E_DURATION',
        '/patterns/0/settings/retention',
        "pattern 'inbox' (mailbox) retention must be longer than 0: every message would be deleted as it arrives",
        'for example 30d, or forever',
      ],
    ]);
  });

  it('refuses max_messages 0', () => {
    const pattern = mailboxPattern({ settings: { topic: 'orders.events', max_messages: 0 } });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.path])).toEqual([
      ['E_SCHEMA_RANGE', '/patterns/0/settings/max_messages'],
    ]);
  });

  it('refuses a max_message_size of zero', () => {
    const pattern = mailboxPattern({ settings: { topic: 'orders.events', max_message_size: '0KiB' } });
    const { diagnostics } = check(validNamespace({ patterns: [pattern] }));
    expect(diagnostics.map((d) => [d.rule, d.message])).toEqual([
      ['E_SIZE', "pattern 'inbox' (mailbox) max_message_size must be larger than 0"],
    ]);
  });
});

describe('mailbox delivery', () => {
  const WITH_PUBSUB_ONLY: Record<string, BackendSpec> = {
    ...BACKENDS,
    mqtt: { name: 'mqtt', implements: ['pubsub'], defaultEndpoint: 'mqtt://localhost:1883', durable: false },
  };
  const onMqtt = (needs?: Record<string, unknown>) => {
    const ns = validNamespace({
      ...(needs ? { needs } : {}),
      patterns: [mailboxPattern({ slots: { source: { backend: 'mqtt' }, store: { backend: 'sqlite' } } })],
    });
    return validateSources([{ file: 'ns.yaml', text: toYaml(ns) }], { backends: WITH_PUBSUB_ONLY }).report
      .diagnostics;
  };

  it('refuses a source that offers only pubsub, which would lose what arrives while the runner is down', () => {
    expect(onMqtt().map((d) => [d.rule, d.path])).toEqual([
      ['E_DELIVERY_AT_MOST_ONCE', '/patterns/0/slots/source/backend'],
    ]);
  });

  it('accepts it when the namespace declares at-most-once', () => {
    expect(onMqtt({ delivery: 'at-most-once' })).toEqual([]);
  });
});
