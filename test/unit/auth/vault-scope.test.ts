import { describe, expect, it } from 'vitest';
import { vaultScope } from '../../../src/auth/vault-scope.js';

describe('which Vault a namespace’s sessions use', () => {
  it('takes the proxy’s --vault-auth-mount when the namespace names no auth_mount', () => {
    expect(
      vaultScope('orders', { address: 'http://v:8200', role: '', authMount: '' }, { mount: 'kubernetes' }),
    ).toEqual({
      address: 'http://v:8200',
      mount: 'kubernetes',
      role: 'prism-orders',
    });
  });

  it('lets the namespace’s own auth_mount, role and address win over the flags', () => {
    expect(
      vaultScope(
        'orders',
        { address: 'http://mine:8200', role: 'r', authMount: 'jwt-orders' },
        { address: 'http://flag:8200', mount: 'kubernetes', role: 'flag-role' },
      ),
    ).toEqual({ address: 'http://mine:8200', mount: 'jwt-orders', role: 'r' });
  });

  it('refuses with E_UNAVAILABLE when no Vault address is known', () => {
    expect(() => vaultScope('orders', undefined, {})).toThrow(
      expect.objectContaining({ code: 'E_UNAVAILABLE' }),
    );
  });
});
