/**
 * An OIDC issuer reduced to what a resource server reads: the discovery document and the JWKS,
 * on 127.0.0.1, plus real ES256 access tokens signed with its key. For claims the development
 * provider cannot issue (a `tenant`, an `iat` hours in the past); tokens are verified by the
 * proxy exactly like the provider's.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export class TokenIssuer {
  issuer = '';
  private server?: Server;
  private key?: { privateKey: CryptoKey; publicJwk: JWK };

  async start(): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    this.key = {
      privateKey,
      publicJwk: { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' },
    };
    this.server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration')
        res.end(JSON.stringify({ issuer: this.issuer, jwks_uri: `${this.issuer}/jwks` }));
      else if (req.url === '/jwks') res.end(JSON.stringify({ keys: [this.key!.publicJwk] }));
      else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.issuer;
  }

  /** An access token for `audience`; `issuedSecondsAgo` backdates iat (exp stays 5 minutes ahead). */
  mint(subject: string, claims: JWTPayload, audience: string, issuedSecondsAgo = 0): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setSubject(subject)
      .setIssuer(this.issuer)
      .setAudience(audience)
      .setIssuedAt(now - issuedSecondsAgo)
      .setExpirationTime(now + 300)
      .sign(this.key!.privateKey);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
