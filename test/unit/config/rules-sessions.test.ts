import { describe, expect, it } from 'vitest';
import {
  authEnabled,
  check,
  consumerPattern,
  keyvaluePattern,
  producerPattern,
  sessionManagerPattern,
  sessionNamespace,
  textAt,
  validNamespace,
  vaultEnabled,
} from '../../support/factories.js';

/*
 * sessionNamespace() is, line by line:
 *    1 namespace: orders          9   - name: sessions          17   audiences:
 *    2 team: commerce            10     type: session-manager   18     - prismctl
 *    3 patterns:                 11     slots:                  19   vault:
 *    4   - name: cache           12       store:                20     enabled: true
 *    5     type: keyvalue        13         backend: redis      21     address: http://localhost:8200
 *    6     slots:                14 auth:                       22     role: prism-orders
 *    7       store:              15   enabled: true
 *    8         backend: redis    16   issuer: https://login.example.com
 */

describe('Vault sessions', () => {
  it('accepts a namespace with Vault enabled and exactly one session-manager', () => {
    expect(
      check(sessionNamespace([keyvaluePattern(), producerPattern(), consumerPattern()])).diagnostics,
    ).toEqual([]);
  });

  it('rejects Vault without a session-manager, pointing at auth.vault.enabled', () => {
    const { diagnostics, text } = check(
      validNamespace({ auth: { ...authEnabled(), vault: vaultEnabled() } }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SESSION_MANAGER_COUNT',
        message: 'Vault is enabled, so the namespace needs exactly one session-manager pattern; it has 0',
        file: 'ns.yaml',
        line: 15,
        column: 14,
        path: '/auth/vault/enabled',
        hint: 'add `- { name: sessions, type: session-manager, slots: { store: { backend: redis } } }`',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('true');
  });

  it('rejects Vault with two session-managers', () => {
    const { diagnostics } = check(sessionNamespace([sessionManagerPattern({ name: 'sessions-2' })]));
    expect(diagnostics.map((d) => [d.rule, d.line, d.column, d.message, d.hint])).toEqual([
      [
        'E_SESSION_MANAGER_COUNT',
        20,
        14,
        'Vault is enabled, so the namespace needs exactly one session-manager pattern; it has 2',
        'keep one session-manager',
      ],
    ]);
  });

  it('does not ask for a session-manager when Vault is disabled', () => {
    const { diagnostics } = check(validNamespace({ auth: { ...authEnabled(), vault: { enabled: false } } }));
    expect(diagnostics).toEqual([]);
  });

  it('rejects Vault sessions while auth is disabled', () => {
    const { diagnostics } = check(
      sessionNamespace(undefined, { auth: { enabled: false, vault: vaultEnabled() } }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_VAULT_REQUIRES_AUTH',
        message: 'Vault sessions start from a verified token, but auth is disabled',
        file: 'ns.yaml',
        line: 17,
        column: 14,
        path: '/auth/vault/enabled',
        hint: 'set `auth.enabled: true` with an issuer and audiences',
      },
    ]);
  });

  it('rejects Vault without an address', () => {
    const { diagnostics } = check(
      sessionNamespace(undefined, {
        auth: { ...authEnabled(), vault: vaultEnabled({ address: undefined }) },
      }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_VAULT_ADDRESS',
        message: 'Vault is enabled but auth.vault.address is missing',
        file: 'ns.yaml',
        line: 20,
        column: 14,
        path: '/auth/vault/enabled',
        hint: 'for example http://localhost:8200',
      },
    ]);
  });

  it.each(['localhost:8200', 'ftp://vault.example.com', 'not a url'])(
    'rejects the Vault address %j, pointing at it',
    (address) => {
      const { diagnostics, text } = check(
        sessionNamespace(undefined, { auth: { ...authEnabled(), vault: vaultEnabled({ address }) } }),
      );
      expect(diagnostics).toEqual([
        {
          severity: 'error',
          rule: 'E_VAULT_ADDRESS',
          message: 'auth.vault.address is not a URL',
          file: 'ns.yaml',
          line: 21,
          column: 14,
          path: '/auth/vault/address',
          hint: 'for example http://localhost:8200',
        },
      ]);
      expect(textAt(text, diagnostics[0]!)).toBe(address);
    },
  );

  it('accepts an https Vault address', () => {
    const vault = vaultEnabled({ address: 'https://vault.example.com:8200' });
    expect(check(sessionNamespace(undefined, { auth: { ...authEnabled(), vault } })).diagnostics).toEqual([]);
  });

  it('rejects Vault without a role, suggesting one named after the namespace', () => {
    const { diagnostics } = check(
      sessionNamespace(undefined, { auth: { ...authEnabled(), vault: vaultEnabled({ role: undefined }) } }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_VAULT_ROLE',
        message: 'Vault is enabled but auth.vault.role is missing',
        file: 'ns.yaml',
        line: 20,
        column: 14,
        path: '/auth/vault/enabled',
        hint: 'for example prism-orders',
      },
    ]);
  });
});

describe('static credentials in session-aware patterns', () => {
  it('rejects an environment credential in a session-aware pattern', () => {
    const cache = keyvaluePattern({
      slots: { store: { backend: 'redis', credentials: '${REDIS_PASSWORD}' } },
    });
    const { diagnostics, text } = check(sessionNamespace([cache]));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_SESSION_STATIC_CREDENTIALS',
        message:
          "pattern 'cache' (keyvalue) is session-aware (Vault is enabled) and may not use static credentials from the environment",
        file: 'ns.yaml',
        line: 9,
        column: 22,
        path: '/patterns/0/slots/store/credentials',
        hint: 'remove `credentials:`; sessions get credentials from Vault',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('${REDIS_PASSWORD}');
  });

  it.each([
    [
      'producer',
      producerPattern({ slots: { sink: { backend: 'kafka', credentials: '${KAFKA_PASSWORD}' } } }),
    ],
    [
      'consumer',
      consumerPattern({ slots: { source: { backend: 'kafka', credentials: '${KAFKA_PASSWORD}' } } }),
    ],
  ])('rejects an environment credential in a %s when Vault is enabled', (_type, pattern) => {
    const { diagnostics } = check(sessionNamespace([pattern]));
    expect(diagnostics.map((d) => [d.rule, d.severity])).toEqual([['E_SESSION_STATIC_CREDENTIALS', 'error']]);
  });

  it('accepts an environment credential in the session-manager, which is not session-aware', () => {
    const { diagnostics } = check(
      validNamespace({
        patterns: [
          keyvaluePattern(),
          sessionManagerPattern({ slots: { store: { backend: 'redis', credentials: '${REDIS_PASSWORD}' } } }),
        ],
        auth: { ...authEnabled(), vault: vaultEnabled() },
      }),
    );
    expect(diagnostics).toEqual([]);
  });

  it('accepts an environment credential when Vault is not enabled', () => {
    const cache = keyvaluePattern({
      slots: { store: { backend: 'redis', credentials: '${REDIS_PASSWORD}' } },
    });
    expect(check(validNamespace({ patterns: [cache] })).diagnostics).toEqual([]);
  });

  it('accepts no credentials in a session-aware pattern', () => {
    expect(check(sessionNamespace()).diagnostics).toEqual([]);
  });
});
