import { describe, expect, it } from 'vitest';
import { VerifiedTokenCache } from '../../../src/auth/verified-cache.js';
import type { VerifiedIdentity } from '../../../src/auth/verify.js';

const identity = (expiresAt: number): VerifiedIdentity => ({
  subject: 'alice',
  groups: ['commerce'],
  tenant: '',
  issuer: 'i',
  expiresAt,
  scopes: [],
});

describe('VerifiedTokenCache', () => {
  it('verifies a token once and answers later calls from memory', async () => {
    let now = 1_000_000;
    const cache = new VerifiedTokenCache(10, 60_000, () => now);
    let calls = 0;
    const verify = async () => (calls++, identity(now / 1000 + 3600));
    await cache.get('scope', 'token-a', verify);
    now += 1000;
    await cache.get('scope', 'token-a', verify);
    expect(calls).toBe(1);
  });

  it('verifies again once the token has expired or the entry is older than its maximum age', async () => {
    let now = 1_000_000;
    const cache = new VerifiedTokenCache(10, 60_000, () => now);
    let calls = 0;
    await cache.get('s', 'short', async () => (calls++, identity(now / 1000 + 5)));
    now += 6000;
    await cache.get('s', 'short', async () => (calls++, identity(now / 1000 + 5)));
    expect(calls).toBe(2);
    await cache.get('s', 'long', async () => (calls++, identity(now / 1000 + 3600)));
    now += 61_000;
    await cache.get('s', 'long', async () => (calls++, identity(now / 1000 + 3600)));
    expect(calls).toBe(4);
  });

  it('keeps verifiers of different issuers apart and never caches a failure', async () => {
    const cache = new VerifiedTokenCache();
    let calls = 0;
    await cache.get('issuer-1', 't', async () => (calls++, identity(Date.now() / 1000 + 60)));
    await cache.get('issuer-2', 't', async () => (calls++, identity(Date.now() / 1000 + 60)));
    await expect(
      cache.get('issuer-3', 't', async () => Promise.reject(new Error('bad signature'))),
    ).rejects.toThrow('bad signature');
    await expect(
      cache.get('issuer-3', 't', async () => Promise.reject(new Error('bad signature'))),
    ).rejects.toThrow('bad signature');
    expect(calls).toBe(2);
  });

  it('evicts the oldest entry when full', async () => {
    const cache = new VerifiedTokenCache(2);
    let calls = 0;
    const verify = async () => (calls++, identity(Date.now() / 1000 + 60));
    await cache.get('s', 'a', verify);
    await cache.get('s', 'b', verify);
    await cache.get('s', 'c', verify);
    await cache.get('s', 'a', verify);
    expect(calls).toBe(4);
  });
});
