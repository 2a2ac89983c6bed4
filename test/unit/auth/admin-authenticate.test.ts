import { describe, expect, it } from 'vitest';
import { adminActionOf, adminGrants, type AdminAuthOptions } from '../../../src/auth/admin-authenticate.js';
import type { VerifiedIdentity } from '../../../src/auth/verify.js';

const identity = (over: Partial<VerifiedIdentity> = {}): VerifiedIdentity => ({
  subject: 'u-1',
  groups: [],
  tenant: '',
  issuer: 'https://idp.example',
  scopes: [],
  ...over,
});

const options: AdminAuthOptions = {
  issuer: 'https://idp.example',
  audiences: ['prism'],
  adminGroups: ['prism-admins'],
  readerGroups: ['analytics'],
  proxyGroups: ['prism-proxies'],
};

describe('admin authorization', () => {
  it('maps reads, writes and proxy calls, and treats an unknown method as a write', () => {
    expect(
      ['GetNamespace', 'ListNamespaces', 'ExportNamespace', 'GetNamespaceHistory'].map(adminActionOf),
    ).toEqual(['read', 'read', 'read', 'read']);
    expect(['ApplyNamespace', 'DeleteNamespace'].map(adminActionOf)).toEqual(['write', 'write']);
    expect(['RegisterProxy', 'Heartbeat', 'GetLatestSchema'].map(adminActionOf)).toEqual([
      'proxy',
      'proxy',
      'proxy',
    ]);
    expect(adminActionOf('DropEverything')).toBe('write');
  });

  it('grants admins read and write, readers read, proxies proxy, others nothing', () => {
    expect([...adminGrants(identity({ groups: ['prism-admins'] }), options)]).toEqual(['read', 'write']);
    expect([...adminGrants(identity({ groups: ['analytics'] }), options)]).toEqual(['read']);
    expect([...adminGrants(identity({ groups: ['prism-proxies'] }), options)]).toEqual(['proxy']);
    expect([...adminGrants(identity({ groups: ['commerce'] }), options)]).toEqual([]);
  });

  it('ignores scopes unless scope mapping is on, and then prism:write implies read', () => {
    const scoped = identity({ scopes: ['prism:write', 'prism:proxy'] });
    expect([...adminGrants(scoped, options)]).toEqual([]);
    expect([...adminGrants(scoped, { ...options, scopeMapping: true })].sort()).toEqual([
      'proxy',
      'read',
      'write',
    ]);
  });
});
