import { describe, expect, it } from 'vitest';
import { renderCanonical } from '../../../src/config/canonical.js';
import { renderReport } from '../../../src/config/report-format.js';
import { validateSources } from '../../../src/config/validate.js';
import {
  check,
  consumerPattern,
  keyvaluePattern,
  producerPattern,
  sessionManagerPattern,
  sessionNamespace,
  source,
  textAt,
  toYaml,
  validNamespace,
} from '../../support/factories.js';

const SECRET = 'Tr0ub4dor-s3cret-7781';

function cacheWithCredentials(credentials: string) {
  return keyvaluePattern({ slots: { store: { backend: 'redis', credentials } } });
}

describe('credential references', () => {
  it.each([
    'vault://database/creds/orders',
    'vault://database/creds/prism-orders.cache_store',
    '${REDIS_PASSWORD}',
    '${redis_password_2}',
  ])('accepts the reference %s', (credentials) => {
    expect(check(validNamespace({ patterns: [cacheWithCredentials(credentials)] })).diagnostics).toEqual([]);
  });

  it('accepts a Vault reference in a session-aware pattern', () => {
    const { diagnostics } = check(sessionNamespace([cacheWithCredentials('vault://database/creds/orders')]));
    expect(diagnostics).toEqual([]);
  });

  it.each(['vault://', 'vault://database creds', 'vault://db?role=x'])(
    'rejects the malformed reference %j',
    (ref) => {
      const { diagnostics, text } = check(validNamespace({ patterns: [cacheWithCredentials(ref)] }));
      expect(diagnostics).toEqual([
        {
          severity: 'error',
          rule: 'E_CREDENTIALS_REF',
          message: "pattern 'cache' (keyvalue) has a malformed vault reference",
          file: 'ns.yaml',
          line: 9,
          column: 22,
          path: '/patterns/0/slots/store/credentials',
          hint: 'write vault://<path>, e.g. vault://database/creds/orders',
        },
      ]);
      expect(textAt(text, diagnostics[0]!)).toContain('vault://');
    },
  );
});

describe('references that no Vault secrets engine can serve', () => {
  const events = (sink: Record<string, string>) =>
    producerPattern({
      slots: { sink, state: { backend: 'postgres', credentials: 'vault://database/creds/x' } },
      settings: { topic: 'orders.events', dedup_window: '5m' },
    });

  it.each(['vault://kv/prism/orders-cache', 'vault://secret/data/redis', 'vault://database/creds/a/b'])(
    'rejects %s: Prism leases only from database/creds',
    (ref) => {
      const { diagnostics } = check(validNamespace({ patterns: [cacheWithCredentials(ref)] }));
      expect(diagnostics).toEqual([
        {
          severity: 'error',
          rule: 'E_CREDENTIALS_REF',
          message:
            "pattern 'cache' (keyvalue) has a vault reference Prism cannot lease from: only vault://database/creds/<role> (Vault's database secrets engine) is served",
          file: 'ns.yaml',
          line: 9,
          column: 22,
          path: '/patterns/0/slots/store/credentials',
          hint: 'write vault://database/creds/<role>, e.g. vault://database/creds/orders',
        },
      ]);
    },
  );

  it('rejects a Vault reference on a kafka slot of a session-aware pattern, saying the slot takes none', () => {
    const { diagnostics, text } = check(
      sessionNamespace([
        events({ backend: 'kafka', credentials: 'vault://database/creds/prism-orders-events-sink' }),
      ]),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_CREDENTIALS_VAULT_BACKEND',
        message:
          "pattern 'events' (producer) slot 'sink' uses kafka, and no Vault secrets engine issues kafka credentials (vault:// works for postgres and redis)",
        file: 'ns.yaml',
        line: 9,
        column: 22,
        path: '/patterns/0/slots/sink/credentials',
        hint: 'remove `credentials:`; kafka slots of a session-aware pattern connect without credentials from the file',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('vault://database/creds/prism-orders-events-sink');
  });

  it('rejects a Vault reference on a nats slot without Vault sessions, pointing at ${ENV}', () => {
    const billing = consumerPattern({
      slots: { source: { backend: 'nats', credentials: 'vault://database/creds/billing' } },
    });
    const { diagnostics } = check(validNamespace({ patterns: [billing] }));
    expect(diagnostics.map((d) => [d.rule, d.severity, d.line, d.column, d.message, d.hint])).toEqual([
      [
        'E_CREDENTIALS_VAULT_BACKEND',
        'error',
        9,
        22,
        "pattern 'billing' (consumer) slot 'source' uses nats, and no Vault secrets engine issues nats credentials (vault:// works for postgres and redis)",
        'use ${ENV_VAR} holding <username>:<password>, or remove `credentials:`',
      ],
    ]);
  });

  it('rejects a Vault reference on memstore, which takes no credentials', () => {
    const ns = validNamespace({
      patterns: [
        keyvaluePattern({
          slots: { store: { backend: 'memstore', credentials: 'vault://database/creds/m' } },
        }),
      ],
    });
    expect(check(ns).diagnostics.map((d) => [d.rule, d.hint])).toEqual([
      ['E_CREDENTIALS_VAULT_BACKEND', 'memstore takes no credentials; remove `credentials:`'],
    ]);
  });

  it('accepts database/creds on the postgres and redis slots of a session-aware producer', () => {
    const ns = sessionNamespace([
      producerPattern({
        slots: {
          sink: { backend: 'redis', credentials: 'vault://database/creds/prism-orders-events-sink' },
          state: { backend: 'postgres', credentials: 'vault://database/creds/prism-orders-events-state' },
        },
        settings: { topic: 'orders.events', dedup_window: '5m' },
      }),
    ]);
    expect(check(ns).diagnostics).toEqual([]);
  });

  it('accepts a kafka slot without credentials in a session-aware pattern', () => {
    expect(check(sessionNamespace([events({ backend: 'kafka' })])).diagnostics).toEqual([]);
  });

  it.each([
    ['${KAFKA_PASSWORD}', 'E_SESSION_STATIC_CREDENTIALS', 'remove `credentials:`; '],
    [SECRET, 'E_CREDENTIALS_LITERAL', 'remove it; '],
  ])(
    'refuses static credentials %j on a kafka slot of a session-aware pattern, saying it connects without any',
    (credentials, rule, start) => {
      const { diagnostics } = check(sessionNamespace([events({ backend: 'kafka', credentials })]));
      expect(diagnostics.map((d) => [d.rule, d.hint])).toEqual([
        [rule, `${start}kafka slots of a session-aware pattern connect without credentials from the file`],
      ]);
    },
  );

  it('suggests only ${ENV} for a literal secret on a kafka slot without Vault sessions', () => {
    const ns = validNamespace({
      patterns: [producerPattern({ slots: { sink: { backend: 'kafka', credentials: SECRET } } })],
    });
    expect(check(ns).diagnostics.map((d) => [d.severity, d.rule, d.hint])).toEqual([
      ['warning', 'E_CREDENTIALS_LITERAL', 'use ${ENV_VAR} instead'],
    ]);
  });
});

describe('literal secrets', () => {
  it('rejects a literal password in a session-aware pattern', () => {
    const { diagnostics, text, report } = check(sessionNamespace([cacheWithCredentials(SECRET)]));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_CREDENTIALS_LITERAL',
        message: "pattern 'cache' (keyvalue) holds a literal secret in a session-aware pattern",
        file: 'ns.yaml',
        line: 9,
        column: 22,
        path: '/patterns/0/slots/store/credentials',
        hint: 'remove it; sessions get credentials from Vault',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe(SECRET);
    expect(report.valid).toBe(false);
  });

  it('warns about a literal password when Vault is not enabled', () => {
    const { diagnostics, report } = check(validNamespace({ patterns: [cacheWithCredentials(SECRET)] }));
    expect(diagnostics).toEqual([
      {
        severity: 'warning',
        rule: 'E_CREDENTIALS_LITERAL',
        message: "pattern 'cache' (keyvalue) holds a literal secret",
        file: 'ns.yaml',
        line: 9,
        column: 22,
        path: '/patterns/0/slots/store/credentials',
        hint: 'use vault://<path> or ${ENV_VAR} instead',
      },
    ]);
    expect(report).toMatchObject({ valid: true, errors: 0, warnings: 1 });
  });

  it('warns about a literal password in the session-manager, which is not session-aware', () => {
    const sessions = sessionManagerPattern({ slots: { store: { backend: 'redis', credentials: SECRET } } });
    const ns = sessionNamespace([], { patterns: [keyvaluePattern(), sessions] });
    const { diagnostics } = check(ns);
    expect(diagnostics.map((d) => [d.severity, d.rule, d.line, d.column])).toEqual([
      ['warning', 'E_CREDENTIALS_LITERAL', 14, 22],
    ]);
  });

  it.each(['$REDIS_PASSWORD', '${REDIS PASSWORD}', '${1PASSWORD}', 'vault:/database/creds'])(
    'treats %j, which only looks like a reference, as a literal',
    (credentials) => {
      const { diagnostics } = check(validNamespace({ patterns: [cacheWithCredentials(credentials)] }));
      expect(diagnostics.map((d) => [d.severity, d.rule])).toEqual([['warning', 'E_CREDENTIALS_LITERAL']]);
    },
  );

  it('makes a literal secret warning fail the run under strict', () => {
    const text = toYaml(validNamespace({ patterns: [cacheWithCredentials(SECRET)] }));
    const { report } = validateSources([source(text)], { strict: true });
    expect(report).toMatchObject({ valid: false, errors: 0, warnings: 1 });
  });
});

describe('secrets are never echoed', () => {
  const namespaces = [
    sessionNamespace([cacheWithCredentials(SECRET)]),
    validNamespace({ patterns: [cacheWithCredentials(SECRET)] }),
    validNamespace({ patterns: [cacheWithCredentials(`vault://db creds ${SECRET}`)] }),
    validNamespace({
      patterns: [producerPattern({ slots: { sink: { backend: 'kafka', credentials: SECRET }, stat: {} } })],
    }),
  ];

  it.each(namespaces.map((ns, i) => [i, ns]))(
    'keeps the secret out of every report format (case %d)',
    (_i, ns) => {
      const { report, text } = check(ns);
      expect(text).toContain(SECRET);
      expect(report.diagnostics.length).toBeGreaterThan(0);
      for (const format of ['text', 'json', 'github'] as const) {
        expect(renderReport(report, format)).not.toContain(SECRET);
      }
      expect(JSON.stringify(report)).not.toContain('s3cret');
    },
  );

  it('redacts a literal secret in the canonical export', () => {
    const { loaded } = check(validNamespace({ patterns: [cacheWithCredentials(SECRET)] }));
    for (const format of ['yaml', 'json'] as const) {
      const out = renderCanonical(
        loaded.map((l) => l.request),
        format,
      );
      expect(out).not.toContain(SECRET);
      expect(out).toContain('<redacted>');
    }
  });
});
