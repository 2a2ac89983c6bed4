import { Metadata } from '@grpc/grpc-js';
import { base64url, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerToken, TokenVerifier } from '../../../src/auth/verify.js';
import { PrismError } from '../../../src/errors.js';
import { AUDIENCE, ISSUER, JwksFixture, mint, signingKey, type SigningKey } from './jwks-fixture.js';

const now = () => Math.floor(Date.now() / 1000);

async function rejection(verifier: TokenVerifier, token: string): Promise<PrismError> {
  const err = await verifier.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PrismError);
  expect((err as PrismError).message).not.toContain(token);
  return err as PrismError;
}

describe('TokenVerifier', () => {
  const jwks = new JwksFixture();
  let key: SigningKey;
  let verifier: TokenVerifier;

  beforeAll(async () => {
    key = await signingKey('k1');
    jwks.keys = [key];
    await jwks.start();
    verifier = new TokenVerifier({
      issuer: ISSUER,
      audiences: [AUDIENCE, 'other'],
      jwksUri: jwks.url,
      jwksCooldownMs: 0,
    });
  });
  afterAll(() => jwks.stop());

  it('accepts a valid token and reads subject, email, groups and tenant', async () => {
    const token = await mint(key, {
      email: 'alice@example.com',
      tenant: 'acme',
      groups: ['commerce', 'ops'],
    });
    expect(await verifier.verify(token)).toMatchObject({
      subject: 'alice',
      email: 'alice@example.com',
      groups: ['commerce', 'ops'],
      tenant: 'acme',
      issuer: ISSUER,
    });
  });

  it('rejects an expired token', async () => {
    const err = await rejection(verifier, await mint(key, {}, { expiresIn: now() - 120 }));
    expect(err.code).toBe('E_UNAUTHENTICATED');
    expect(err.message).toBe('the token has expired');
  });

  it('tolerates at most 60 s of skew even when configured for more', async () => {
    const lenient = new TokenVerifier({
      issuer: ISSUER,
      audiences: [AUDIENCE],
      jwksUri: jwks.url,
      clockToleranceSeconds: 600,
    });
    expect(await lenient.verify(await mint(key, {}, { expiresIn: now() - 20 }))).toMatchObject({
      subject: 'alice',
    });
    const err = await rejection(lenient, await mint(key, {}, { expiresIn: now() - 90 }));
    expect(err.message).toBe('the token has expired');
  });

  it('rejects a token that is not yet valid', async () => {
    const err = await rejection(
      verifier,
      await mint(key, {}, { notBefore: now() + 300, expiresIn: now() + 600 }),
    );
    expect([err.code, err.message]).toEqual(['E_UNAUTHENTICATED', 'the token is not yet valid']);
  });

  it('rejects a token from another issuer', async () => {
    const err = await rejection(verifier, await mint(key, {}, { issuer: 'https://evil.test' }));
    expect([err.code, err.message]).toEqual(['E_UNAUTHENTICATED', 'the token was issued by another issuer']);
  });

  it('rejects a token for another audience', async () => {
    const err = await rejection(verifier, await mint(key, {}, { audience: 'billing' }));
    expect([err.code, err.message]).toEqual(['E_UNAUTHENTICATED', 'the token is for another audience']);
  });

  it('rejects a tampered signature', async () => {
    const [header, , signature] = (await mint(key)).split('.');
    const forged = base64url.encode(
      JSON.stringify({
        sub: 'mallory',
        iss: ISSUER,
        aud: AUDIENCE,
        exp: now() + 300,
        groups: ['prism-admins'],
      }),
    );
    const err = await rejection(verifier, `${header}.${forged}.${signature}`);
    expect([err.code, err.message]).toEqual(['E_UNAUTHENTICATED', 'the token signature does not verify']);
  });

  it('rejects alg none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', kid: 'k1' }));
    const payload = base64url.encode(
      JSON.stringify({ sub: 'mallory', iss: ISSUER, aud: AUDIENCE, exp: now() + 300 }),
    );
    const err = await rejection(verifier, `${header}.${payload}.`);
    expect(err.code).toBe('E_UNAUTHENTICATED');
  });

  it('rejects an HS256 token signed with the public key as the secret', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(key.publicJwk));
    const token = await new SignJWT({ groups: ['prism-admins'] })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setSubject('mallory')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(secret);
    const err = await rejection(verifier, token);
    expect([err.code, err.message]).toEqual([
      'E_UNAUTHENTICATED',
      'the token is signed with an algorithm that is not allowed',
    ]);
  });

  it('refetches the JWKS once when a token names an unknown kid (rotation)', async () => {
    await verifier.verify(await mint(key));
    const before = jwks.fetches;
    const rotated = await signingKey('k2', 'RS256');
    jwks.keys = [key, rotated];
    expect(await verifier.verify(await mint(rotated, { sub: 'bob' }))).toMatchObject({ subject: 'bob' });
    expect(jwks.fetches).toBe(before + 1);
  });

  it('rejects a kid the issuer does not publish', async () => {
    const stranger = await signingKey('k-unknown');
    const err = await rejection(verifier, await mint(stranger));
    expect([err.code, err.message]).toEqual([
      'E_UNAUTHENTICATED',
      "no key of the issuer matches the token's kid and algorithm",
    ]);
  });

  it('rejects a malformed token', async () => {
    const err = await rejection(verifier, 'not-a-jwt');
    expect([err.code, err.message]).toEqual(['E_UNAUTHENTICATED', 'the token is malformed']);
  });
});

describe('bearerToken', () => {
  it('reads the token from the authorization metadata', () => {
    const md = new Metadata();
    md.set('authorization', 'Bearer abc.def.ghi');
    expect(bearerToken(md)).toBe('abc.def.ghi');
  });

  it('answers E_UNAUTHENTICATED without a token or with another scheme', () => {
    expect(() => bearerToken(new Metadata())).toThrow(expect.objectContaining({ code: 'E_UNAUTHENTICATED' }));
    const md = new Metadata();
    md.set('authorization', 'Basic dXNlcjpwYXNz');
    expect(() => bearerToken(md)).toThrow('the authorization header is not a bearer token');
  });
});
