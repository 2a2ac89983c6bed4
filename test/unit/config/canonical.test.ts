import { describe, expect, it } from 'vitest';
import { renderCanonical, type CanonicalFormat } from '../../../src/config/canonical.js';
import { validatePaths } from '../../../src/config/validate.js';
import {
  check,
  consumerPattern,
  keyvaluePattern,
  producerPattern,
  sessionManagerPattern,
  sessionNamespace,
  validNamespace,
  type Obj,
} from '../../support/factories.js';

const FORMATS: CanonicalFormat[] = ['yaml', 'json'];

/** Validates, then exports; fails the test on any error so that exports are only of valid input. */
function exported(input: string | Obj, format: CanonicalFormat): string {
  const { loaded, report } = check(input);
  expect(report.errors).toBe(0);
  return renderCanonical(
    loaded.map((l) => l.request),
    format,
  );
}

describe('canonical export', () => {
  it('fills defaults, sorts map keys and keeps proto field order', () => {
    const ns = validNamespace({
      metadata: { 'cost-center': '1234', audit: 'yes' },
      description: 'Orders and their events',
      patterns: [
        consumerPattern({
          slots: {
            state: { backend: 'postgres' },
            source: { backend: 'kafka' },
            'dead-letter': { backend: 'kafka' },
          },
        }),
      ],
    });
    expect(exported(ns, 'yaml')).toBe(
      [
        'namespace: orders',
        'team: commerce',
        'description: Orders and their events',
        'patterns:',
        '  - name: billing',
        '    type: consumer',
        '    version: v1',
        '    slots:',
        '      dead-letter:',
        '        backend: kafka',
        '      source:',
        '        backend: kafka',
        '      state:',
        '        backend: postgres',
        '    settings:',
        '      topic: orders.events',
        '      consumer_group: billing',
        '      max_retries: 3',
        '      ack_timeout: 30s',
        'metadata:',
        '  audit: yes',
        '  cost-center: "1234"',
        '',
      ].join('\n'),
    );
  });

  it.each<[string, Obj, Obj]>([
    ['keyvalue', keyvaluePattern(), { default_ttl: '0s', max_value_size: '1MiB' }],
    [
      'producer',
      producerPattern(),
      { topic: 'orders.events', max_retries: 3, batch_size: 1, batch_interval: '10ms' },
    ],
    [
      'consumer',
      consumerPattern(),
      { topic: 'orders.events', consumer_group: 'billing', max_retries: 3, ack_timeout: '30s' },
    ],
    ['session-manager', sessionManagerPattern(), { session_ttl: '1h', idle_timeout: '15m' }],
  ])('fills the registry defaults of %s and its newest version', (_type, pattern, settings) => {
    const out = JSON.parse(exported(validNamespace({ patterns: [pattern] }), 'json'));
    expect(out.patterns[0].version).toBe('v1');
    expect(out.patterns[0].settings).toEqual(settings);
  });

  it('keeps settings that were given, including zero', () => {
    const pattern = producerPattern({
      settings: { topic: 'orders.events', max_retries: 0, batch_size: 50, batch_interval: '1s' },
    });
    const out = JSON.parse(exported(validNamespace({ patterns: [pattern] }), 'json'));
    expect(out.patterns[0].settings).toEqual({
      topic: 'orders.events',
      max_retries: 0,
      batch_size: 50,
      batch_interval: '1s',
    });
  });

  it('leaves an unset Vault auth mount to the proxy (--vault-auth-mount decides)', () => {
    const out = JSON.parse(exported(sessionNamespace(), 'json'));
    expect(out.auth.vault).toEqual({
      enabled: true,
      address: 'http://localhost:8200',
      role: 'prism-orders',
    });
  });

  it('redacts literal secrets and keeps references', () => {
    const pattern = consumerPattern({
      slots: {
        source: { backend: 'kafka', credentials: 'hunter2' },
        state: { backend: 'redis', credentials: '${REDIS_PASSWORD}' },
        'dead-letter': { backend: 'postgres', credentials: 'vault://database/creds/orders' },
      },
    });
    for (const format of FORMATS) {
      const out = exported(validNamespace({ patterns: [pattern] }), format);
      expect(out).not.toContain('hunter2');
      const slots = format === 'json' ? JSON.parse(out).patterns[0].slots : undefined;
      if (slots) {
        expect(slots).toEqual({
          'dead-letter': { backend: 'postgres', credentials: 'vault://database/creds/orders' },
          source: { backend: 'kafka', credentials: '<redacted>' },
          state: { backend: 'redis', credentials: '${REDIS_PASSWORD}' },
        });
      } else {
        expect(out).toContain('credentials: <redacted>');
      }
    }
  });

  it('writes several namespaces as YAML documents, or as a JSON `namespaces` list', () => {
    const text = [validNamespace(), validNamespace({ namespace: 'payments' })];
    const yaml = exported({ namespaces: text }, 'yaml');
    expect(yaml.split('---\n').map((doc) => doc.split('\n')[0])).toEqual([
      'namespace: orders',
      'namespace: payments',
    ]);
    const json = JSON.parse(exported({ namespaces: text }, 'json'));
    expect(json.namespaces.map((n: Obj) => n.namespace)).toEqual(['orders', 'payments']);
  });
});

describe('the export is a fixed point', () => {
  it.each(FORMATS)('re-exporting the %s export of the examples gives identical bytes', async (format) => {
    const { loaded, report } = await validatePaths(['examples/namespaces']);
    expect(report.errors).toBe(0);
    const first = renderCanonical(
      loaded.map((l) => l.request),
      format,
    );
    const second = exported(first, format);
    expect(second).toBe(first);
  });

  it.each(FORMATS)('the %s export of the examples validates with no diagnostics', async (format) => {
    const { loaded } = await validatePaths(['examples/namespaces']);
    const { diagnostics } = check(
      renderCanonical(
        loaded.map((l) => l.request),
        format,
      ),
    );
    expect(diagnostics).toEqual([]);
  });

  it.each(FORMATS)('re-exporting a %s export with a redacted secret gives identical bytes', (format) => {
    const pattern = keyvaluePattern({ slots: { store: { backend: 'redis', credentials: 'hunter2' } } });
    const first = exported(validNamespace({ patterns: [pattern], metadata: { z: '1', a: '2' } }), format);
    const { diagnostics } = check(first);
    expect(diagnostics.map((d) => [d.severity, d.rule])).toEqual([['warning', 'E_CREDENTIALS_LITERAL']]);
    expect(exported(first, format)).toBe(first);
  });
});
