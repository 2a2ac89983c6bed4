import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type * as Oidc from 'openid-client';
import { connect } from '../auth/login.js';
import { PrismError } from '../errors.js';

/** Where the console logs people in (docs/console.md, "Login and rights"). */
export interface ConsoleLogin {
  issuer: string;
  /** Public client; default `prismctl`. */
  clientId?: string;
  scopes?: string;
}

export interface ConsoleSession {
  id: string;
  accessToken: string;
  /** Email, else subject: for display only; rights come from the admin's authorizer. */
  person: string;
  /** Unix ms when the access token expires; the session ends with it. */
  expiresAtMs: number;
  /** Form token (CSRF); compared with every POST of this session. */
  csrf: string;
}

interface PendingLogin {
  verifier: string;
  state: string;
  returnTo: string;
  redirectUri: string;
  createdAtMs: number;
}

const LOGIN_TTL_MS = 10 * 60_000;
const MAX_PENDING = 1000;

const randomId = () => randomBytes(32).toString('base64url');

/**
 * Console sessions: authorization code + PKCE at the admin's issuer, then an opaque id in the
 * browser and the access token only in this process's memory.
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly pending = new Map<string, PendingLogin>();
  private config?: Promise<Oidc.Configuration>;

  constructor(
    private readonly login: ConsoleLogin,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a login: the pending-login id (for a cookie) and the URL to send the browser to. */
  async begin(redirectUri: string, returnTo: string): Promise<{ loginId: string; url: string }> {
    const oidc = await import('openid-client');
    const config = await this.configuration();
    this.sweep();
    const pending: PendingLogin = {
      verifier: oidc.randomPKCECodeVerifier(),
      state: oidc.randomState(),
      returnTo,
      redirectUri,
      createdAtMs: this.now(),
    };
    const loginId = randomId();
    if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(loginId, pending);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: this.login.scopes ?? 'openid email profile groups',
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
    });
    return { loginId, url: url.href };
  }

  /** Finishes a login from the callback URL; the new session and where the person was going. */
  async finish(
    loginId: string | undefined,
    callback: URL,
  ): Promise<{ session: ConsoleSession; returnTo: string }> {
    const pending = loginId ? this.pending.get(loginId) : undefined;
    if (loginId) this.pending.delete(loginId);
    if (!pending || pending.createdAtMs + LOGIN_TTL_MS < this.now())
      throw new PrismError('E_UNAUTHENTICATED', 'this login was not started here or took too long', {
        hint: 'log in again',
      });
    const error = callback.searchParams.get('error');
    if (error)
      throw new PrismError('E_UNAUTHENTICATED', `the identity provider refused the login: ${error}`, {
        hint: callback.searchParams.get('error_description') ?? undefined,
      });
    const oidc = await import('openid-client');
    // The provider's redirect lands on our callback; the grant checks it against redirect_uri.
    const returned = new URL(pending.redirectUri);
    returned.search = callback.search;
    let tokens: Oidc.TokenEndpointResponse;
    try {
      tokens = await oidc.authorizationCodeGrant(await this.configuration(), returned, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
      });
    } catch (err) {
      if (err instanceof oidc.ResponseBodyError)
        throw new PrismError('E_UNAUTHENTICATED', `the identity provider refused the code: ${err.error}`);
      throw new PrismError('E_UNAUTHENTICATED', `the login did not complete: ${(err as Error).message}`);
    }
    const claims = decodeJwt(tokens.access_token);
    const session: ConsoleSession = {
      id: randomId(),
      accessToken: tokens.access_token,
      person: typeof claims.email === 'string' ? claims.email : (claims.sub ?? 'unknown'),
      expiresAtMs: (claims.exp ?? Math.floor(this.now() / 1000) + (tokens.expires_in ?? 300)) * 1000,
      csrf: randomId(),
    };
    this.sessions.set(session.id, session);
    return { session, returnTo: pending.returnTo };
  }

  /** The live session with this id; an expired one is forgotten. */
  get(id: string | undefined): ConsoleSession | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (session && session.expiresAtMs <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  private configuration(): Promise<Oidc.Configuration> {
    this.config ??= connect({
      issuer: this.login.issuer,
      clientId: this.login.clientId ?? 'prismctl',
      scopes: this.login.scopes ?? '',
    }).catch((err: unknown) => {
      this.config = undefined;
      throw err;
    });
    return this.config;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, p] of this.pending) if (p.createdAtMs + LOGIN_TTL_MS < now) this.pending.delete(id);
    for (const [id, s] of this.sessions) if (s.expiresAtMs <= now) this.sessions.delete(id);
  }
}
