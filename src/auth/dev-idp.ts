import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type { Configuration } from 'oidc-provider';

/**
 * A development person: the login is the email; the password is not checked. A person without
 * `groups` gets tokens without a `groups` claim, as from an IdP or connector that sends none.
 */
export interface DevUser {
  email: string;
  name: string;
  groups?: string[];
}

export const DEV_USERS: readonly DevUser[] = [
  { email: 'dev@local.prism', name: 'Prism Developer', groups: ['prism-admins'] },
  { email: 'alice@example.com', name: 'Alice', groups: ['commerce'] },
  { email: 'bob@example.com', name: 'Bob', groups: ['analytics'] },
];

export const DEV_CLIENT_ID = 'prismctl';
export const DEV_AUDIENCE = 'prism';
/** The resource indicator (an absolute URI) whose tokens carry aud DEV_AUDIENCE. */
export const DEV_RESOURCE = 'urn:prism:data';

export interface DevIdpOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  audience?: string;
  users?: readonly DevUser[];
  accessTokenTtlSeconds?: number;
  /**
   * Bind the port at start, but load the provider (oidc-provider costs ~0.4 s of CPU) only on the
   * first request or `warm()`, so a stack can be ready before it; early requests wait for it.
   */
  deferProvider?: boolean;
}

/**
 * A development OpenID Provider (oidc-provider) on 127.0.0.1 for the embedded stack and tests:
 * device flow, authorization code with PKCE, refresh tokens (offline_access), revocation, a JWKS,
 * and JWT access tokens for the `prism` audience carrying `groups` and `email`. Its login page
 * accepts any password for the dev users. Never for production: keys live in memory only.
 */
type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export class DevIdp {
  private server?: Server;
  private handler?: Promise<RequestHandler>;
  issuer = '';

  constructor(private readonly options: DevIdpOptions = {}) {}

  async start(): Promise<string> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, '127.0.0.1', resolve);
    });
    this.server = server;
    this.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.warm().then(
        (handle) => handle(req, res),
        (err: unknown) => {
          res.statusCode = 503;
          res.end(`the development identity provider failed to start: ${(err as Error).message}\n`);
        },
      );
    });
    if (!this.options.deferProvider) await this.warm();
    return this.issuer;
  }

  /** Loads the provider once; resolves when it can answer. */
  warm(): Promise<RequestHandler> {
    this.handler ??= (async () => {
      const { default: Provider } = await import('oidc-provider');
      return new Provider(this.issuer, await this.configuration()).callback() as RequestHandler;
    })();
    return this.handler;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async configuration(): Promise<Configuration> {
    const users = new Map((this.options.users ?? DEV_USERS).map((u) => [u.email, u]));
    const audience = this.options.audience ?? DEV_AUDIENCE;
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const signing = {
      ...(await exportJWK(privateKey)),
      kid: `dev-${randomBytes(4).toString('hex')}`,
      alg: 'ES256',
      use: 'sig',
    };
    const claimsOf = (user: DevUser) => ({
      sub: user.email,
      email: user.email,
      email_verified: true,
      name: user.name,
      ...(user.groups !== undefined ? { groups: user.groups } : {}),
    });
    return {
      clients: [
        {
          client_id: DEV_CLIENT_ID,
          token_endpoint_auth_method: 'none',
          grant_types: [
            'urn:ietf:params:oauth:grant-type:device_code',
            'authorization_code',
            'refresh_token',
          ],
          response_types: ['code'],
          // native: any loopback port may replace the registered one (RFC 8252 §7.3)
          application_type: 'native',
          // the second is the admin's web console (docs/console.md)
          redirect_uris: ['http://127.0.0.1/callback', 'http://127.0.0.1/console/callback'],
          id_token_signed_response_alg: 'ES256',
        },
      ],
      jwks: { keys: [signing as never] },
      cookies: { keys: [randomBytes(32).toString('hex')] },
      scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
      claims: {
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name'],
        groups: ['groups'],
      },
      ttl: {
        AccessToken: this.options.accessTokenTtlSeconds ?? 600,
        DeviceCode: 600,
        RefreshToken: 7 * 24 * 3600,
        Grant: 7 * 24 * 3600,
        Session: 24 * 3600,
        Interaction: 3600,
        IdToken: 3600,
        AuthorizationCode: 60,
      },
      findAccount: (_ctx, id) => {
        const user = users.get(id);
        if (!user) return undefined;
        return { accountId: id, claims: () => claimsOf(user) };
      },
      extraTokenClaims: (_ctx, token) => {
        if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
        const user = users.get(token.accountId);
        if (!user) return undefined;
        return { email: user.email, ...(user.groups !== undefined ? { groups: user.groups } : {}) };
      },
      features: {
        devInteractions: { enabled: true },
        deviceFlow: { enabled: true },
        revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => DEV_RESOURCE,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: 'prism',
            audience,
            accessTokenTTL: this.options.accessTokenTtlSeconds ?? 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          }),
        },
      },
      issueRefreshToken: (_ctx, client, code) =>
        client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    };
  }
}
