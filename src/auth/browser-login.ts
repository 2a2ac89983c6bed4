import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { PrismError } from '../errors.js';
import { connect } from './login.js';
import type { OidcSettings } from './oidc-config.js';
import type { CachedTokens, TokenCache } from './token-cache.js';

/** How long to wait for the browser to come back to the loopback callback. Default 5 minutes. */
export const DEFAULT_CALLBACK_TIMEOUT_MS = 5 * 60_000;

export interface BrowserPrompt {
  /** The authorization URL to open. */
  url: string;
  /** Where the provider sends the browser back: http://127.0.0.1:<port>/callback. */
  redirectUri: string;
}

export interface BrowserLoginOptions {
  /** Loopback port for the callback; 0 (default) picks a free one. */
  port?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Authorization code with PKCE (RFC 7636) on a loopback redirect (RFC 8252): listens on
 * 127.0.0.1, shows the authorization URL, waits for the provider to send the browser back to
 * /callback, checks the state, exchanges the code with the verifier and stores the tokens in the
 * cache. Public client: no secret.
 */
export async function browserLogin(
  settings: OidcSettings,
  cache: TokenCache,
  show: (prompt: BrowserPrompt) => void,
  options: BrowserLoginOptions = {},
): Promise<CachedTokens> {
  const config = await connect(settings);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const callback = await listenForCallback(options.port ?? 0);
  try {
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: callback.redirectUri,
      scope: settings.scopes,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      // OpenID Connect Core §11: a refresh token (offline_access) is granted only after consent.
      ...(settings.scopes.split(' ').includes('offline_access') ? { prompt: 'consent' } : {}),
    });
    show({ url: url.href, redirectUri: callback.redirectUri });
    const returned = await callback.wait(options.timeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS, options.signal);
    const error = returned.searchParams.get('error');
    if (error) {
      const reason = returned.searchParams.get('error_description');
      throw new PrismError(
        'E_UNAUTHENTICATED',
        error === 'access_denied'
          ? 'the login was denied at the identity provider'
          : `the identity provider refused the login: ${error}`,
        reason ? { hint: reason } : undefined,
      );
    }
    let tokens: oidc.TokenEndpointResponse;
    try {
      tokens = await oidc.authorizationCodeGrant(config, returned, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
    } catch (err) {
      if (err instanceof oidc.ResponseBodyError)
        throw new PrismError('E_UNAUTHENTICATED', `the identity provider refused the code: ${err.error}`);
      if (err instanceof Error && /state/i.test(err.message))
        throw new PrismError('E_UNAUTHENTICATED', 'the callback did not carry the state of this login');
      throw err;
    }
    const cached: CachedTokens = {
      issuer: settings.issuer,
      clientId: settings.clientId,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      idToken: tokens.id_token,
      expiresAt: Math.floor(Date.now() / 1000) + (tokens.expires_in ?? 300),
    };
    cache.write(cached);
    return cached;
  } finally {
    await callback.close();
  }
}

interface Callback {
  redirectUri: string;
  /** Resolves with the full callback URL the browser was sent to. */
  wait: (timeoutMs: number, signal?: AbortSignal) => Promise<URL>;
  close: () => Promise<void>;
}

async function listenForCallback(port: number): Promise<Callback> {
  let arrived: (url: URL) => void = () => undefined;
  const first = new Promise<URL>((resolve) => (arrived = resolve));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', redirectUri);
    if (req.method !== 'GET' || url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const failed = url.searchParams.has('error');
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      .end(
        `<!doctype html><title>prismctl</title><p>${failed ? 'The login did not complete.' : 'You are logged in.'} You can close this window and return to the terminal.</p>`,
      );
    arrived(url);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new PrismError('E_USAGE', `cannot listen on 127.0.0.1:${port} for the login callback: ${err.code}`, {
          hint: 'pick another --port, or use the device flow (prismctl login without --browser)',
        }),
      ),
    );
    server.listen(port, '127.0.0.1', resolve);
  });
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  return {
    redirectUri,
    wait: (timeoutMs, signal) =>
      new Promise<URL>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new PrismError('E_UNAUTHENTICATED', 'the browser did not come back to prismctl in time', {
                hint: 'run prismctl login --browser again, or use the device flow',
              }),
            ),
          timeoutMs,
        );
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(new PrismError('E_UNAUTHENTICATED', 'the login was cancelled'));
        });
        void first.then((url) => {
          clearTimeout(timer);
          resolve(url);
        });
      }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
