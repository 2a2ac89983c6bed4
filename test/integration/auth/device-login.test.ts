import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../../src/auth/dev-idp.js';
import { describe as describeLogin, deviceLogin, freshAccessToken, logout } from '../../../src/auth/login.js';
import { DEFAULT_SCOPES, type OidcSettings } from '../../../src/auth/oidc-config.js';
import { TokenCache } from '../../../src/auth/token-cache.js';
import { TokenVerifier } from '../../../src/auth/verify.js';
import { approveDeviceCode } from './play-person.js';

describe('device login against the dev IdP', () => {
  const idp = new DevIdp();
  let settings: OidcSettings;
  let home: string;

  beforeAll(async () => {
    settings = { issuer: await idp.start(), clientId: 'prismctl', scopes: DEFAULT_SCOPES };
    home = mkdtempSync(join(tmpdir(), 'prism-auth-'));
  });
  afterAll(async () => {
    await idp.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('logs alice in, caches a JWT the proxy can verify, refreshes it, and logs out', async () => {
    const cache = new TokenCache(home);
    const tokens = await deviceLogin(
      settings,
      cache,
      (p) => void approveDeviceCode(p.verificationUri, p.userCode, 'alice@example.com'),
      { intervalSeconds: 0.05 },
    );
    expect(statSync(cache.file).mode & 0o777).toBe(0o600);
    expect(describeLogin(tokens)).toMatchObject({ subject: 'alice@example.com', groups: ['commerce'] });
    expect(tokens.refreshToken).toBeTruthy();

    const verifier = new TokenVerifier({ issuer: settings.issuer, audiences: [DEV_AUDIENCE] });
    expect(await verifier.verify(tokens.accessToken)).toMatchObject({
      subject: 'alice@example.com',
      email: 'alice@example.com',
      groups: ['commerce'],
    });

    cache.write({ ...tokens, expiresAt: Math.floor(Date.now() / 1000) + 10 });
    const refreshed = await freshAccessToken(settings, cache);
    expect(refreshed.accessToken).not.toBe(tokens.accessToken);
    expect(refreshed.refreshToken).not.toBe(tokens.refreshToken);

    expect(await logout(settings, cache)).toEqual({ revoked: true });
    expect(cache.read()).toBeUndefined();
  });

  it('reports a denied login clearly', async () => {
    const err = await deviceLogin(
      settings,
      new TokenCache(home),
      (p) => void approveDeviceCode(p.verificationUri, p.userCode, 'bob@example.com', { deny: true }),
      { intervalSeconds: 0.05 },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'E_UNAUTHENTICATED',
      message: 'the login was denied at the identity provider',
    });
  });
});
