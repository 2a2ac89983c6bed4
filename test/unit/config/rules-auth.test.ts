import { describe, expect, it } from 'vitest';
import { authEnabled, check, textAt, validNamespace } from '../../support/factories.js';

/*
 * validNamespace({ auth: authEnabled() }) ends, from line 9:
 *    9 auth:
 *   10   enabled: true
 *   11   issuer: https://login.example.com
 *   12   audiences:
 *   13     - prismctl
 */

describe('auth issuer', () => {
  it.each([
    'https://login.example.com',
    'https://login.example.com/realms/prism',
    'http://localhost:5556/dex',
    'http://127.0.0.1:5556/dex',
    'http://[::1]:5556/dex',
  ])('accepts the issuer %s', (issuer) => {
    expect(check(validNamespace({ auth: authEnabled({ issuer }) })).diagnostics).toEqual([]);
  });

  it('rejects enabled auth without an issuer, pointing at auth.enabled', () => {
    const { diagnostics, text } = check(validNamespace({ auth: authEnabled({ issuer: undefined }) }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_AUTH_ISSUER',
        message: 'auth is enabled but auth.issuer is missing',
        file: 'ns.yaml',
        line: 10,
        column: 12,
        path: '/auth/enabled',
        hint: 'for example https://login.example.com',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('true');
  });

  it.each(['login.example.com', 'ftp://localhost/dex'])(
    'rejects the issuer %j, which is not an http(s) URL',
    (issuer) => {
      const { diagnostics, text } = check(validNamespace({ auth: authEnabled({ issuer }) }));
      expect(diagnostics).toEqual([
        {
          severity: 'error',
          rule: 'E_AUTH_ISSUER',
          message: 'auth.issuer is not a URL',
          file: 'ns.yaml',
          line: 11,
          column: 11,
          path: '/auth/issuer',
          hint: 'for example https://login.example.com',
        },
      ]);
      expect(textAt(text, diagnostics[0]!)).toBe(issuer);
    },
  );

  it('rejects a plain http issuer that is not on this machine', () => {
    const { diagnostics, text } = check(
      validNamespace({ auth: authEnabled({ issuer: 'http://login.example.com/dex' }) }),
    );
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_AUTH_ISSUER_INSECURE',
        message:
          'auth.issuer must use https (plain http is allowed only for localhost), found http://login.example.com',
        file: 'ns.yaml',
        line: 11,
        column: 11,
        path: '/auth/issuer',
        hint: 'use an https issuer URL',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('http://login.example.com/dex');
  });

  it.each(['http://localhost.example.com', 'http://10.0.0.7:5556', 'http://127.0.0.1.nip.io'])(
    'rejects the insecure issuer %s',
    (issuer) => {
      const { diagnostics } = check(validNamespace({ auth: authEnabled({ issuer }) }));
      expect(diagnostics.map((d) => d.rule)).toEqual(['E_AUTH_ISSUER_INSECURE']);
    },
  );

  it('does not echo a password given in the issuer URL', () => {
    const { diagnostics } = check(
      validNamespace({ auth: authEnabled({ issuer: 'http://admin:hunter2@login.example.com' }) }),
    );
    expect(diagnostics.map((d) => d.rule)).toEqual(['E_AUTH_ISSUER_INSECURE']);
    expect(JSON.stringify(diagnostics)).not.toContain('hunter2');
  });

  it('does not check the issuer while auth is disabled', () => {
    const auth = { enabled: false, issuer: 'http://login.example.com', audiences: [] };
    expect(check(validNamespace({ auth })).diagnostics).toEqual([]);
  });
});

describe('auth audiences', () => {
  it('rejects enabled auth with an empty audience list', () => {
    const { diagnostics } = check(validNamespace({ auth: authEnabled({ audiences: [] }) }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_AUTH_AUDIENCES',
        message: 'auth is enabled but auth.audiences is empty',
        file: 'ns.yaml',
        line: 10,
        column: 12,
        path: '/auth/enabled',
        hint: 'add `audiences: [prismctl]`',
      },
    ]);
  });

  it('rejects enabled auth without audiences', () => {
    const { diagnostics } = check(validNamespace({ auth: authEnabled({ audiences: undefined }) }));
    expect(diagnostics.map((d) => [d.rule, d.line, d.column])).toEqual([['E_AUTH_AUDIENCES', 10, 12]]);
  });

  it('reports a missing issuer and missing audiences together', () => {
    const { diagnostics } = check(validNamespace({ auth: { enabled: true } }));
    expect(diagnostics.map((d) => d.rule)).toEqual(['E_AUTH_AUDIENCES', 'E_AUTH_ISSUER']);
  });
});
