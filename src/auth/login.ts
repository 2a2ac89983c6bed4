import type * as Oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { PrismError } from '../errors.js';
import type { OidcSettings } from './oidc-config.js';
import { TokenCache, type CachedTokens } from './token-cache.js';

/** Refresh this many seconds before the access token expires. */
export const REFRESH_MARGIN_SECONDS = 60;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** openid-client, loaded only when a login, refresh or logout needs the identity provider. */
const openidClient = (): Promise<typeof Oidc> => import('openid-client');

/** Discovers the issuer; plain HTTP is allowed only for a loopback issuer (the dev IdP). */
export async function connect(settings: OidcSettings): Promise<Oidc.Configuration> {
  const url = new URL(settings.issuer);
  const insecure = url.protocol === 'http:';
  if (insecure && !LOOPBACK.has(url.hostname))
    throw new PrismError(
      'E_USAGE',
      `refusing a plain-http issuer that is not on loopback: ${settings.issuer}`,
      {
        hint: 'use https for a remote identity provider',
      },
    );
  const oidc = await openidClient();
  try {
    return await oidc.discovery(url, settings.clientId, undefined, oidc.None(), {
      // openid-client marks it deprecated only so that it stands out; `insecure` is loopback-only.
      // eslint-disable-next-line @typescript-eslint/no-deprecated
      execute: insecure ? [oidc.allowInsecureRequests] : [],
    });
  } catch (err) {
    throw new PrismError(
      'E_UNREACHABLE',
      `cannot reach the identity provider ${settings.issuer}: ${(err as Error).message}`,
    );
  }
}

export interface DevicePrompt {
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  expiresIn: number;
}

/**
 * Device authorization grant (RFC 8628): shows the code, polls at the server's interval (or
 * `intervalSeconds`, for tests), honours slow_down and authorization_pending, and turns
 * access_denied and expired_token into clear errors. Stores the tokens in the cache.
 */
export async function deviceLogin(
  settings: OidcSettings,
  cache: TokenCache,
  show: (prompt: DevicePrompt) => void,
  options: { intervalSeconds?: number; signal?: AbortSignal } = {},
): Promise<CachedTokens> {
  const config = await connect(settings);
  const oidc = await openidClient();
  const start = await oidc
    .initiateDeviceAuthorization(config, { scope: settings.scopes })
    .catch((err: unknown) => {
      if (err instanceof oidc.ResponseBodyError)
        throw new PrismError(
          'E_UNAUTHENTICATED',
          `the identity provider refused the device login: ${err.error}`,
          {
            hint: err.error_description,
          },
        );
      throw err;
    });
  show({
    userCode: start.user_code,
    verificationUri: start.verification_uri,
    verificationUriComplete: start.verification_uri_complete,
    expiresIn: start.expires_in,
  });
  const response =
    options.intervalSeconds !== undefined ? { ...start, interval: options.intervalSeconds } : start;
  let tokens: Oidc.TokenEndpointResponse;
  try {
    tokens = await oidc.pollDeviceAuthorizationGrant(config, response, undefined, { signal: options.signal });
  } catch (err) {
    if (err instanceof oidc.ResponseBodyError) {
      if (err.error === 'access_denied')
        throw new PrismError('E_UNAUTHENTICATED', 'the login was denied at the identity provider');
      if (err.error === 'expired_token')
        throw new PrismError('E_UNAUTHENTICATED', 'the code expired before it was approved', {
          hint: 'run prismctl login again and approve the code sooner',
        });
      throw new PrismError('E_UNAUTHENTICATED', `the identity provider refused the login: ${err.error}`);
    }
    throw err;
  }
  const cached = toCache(settings, tokens);
  cache.write(cached);
  return cached;
}

function toCache(
  settings: OidcSettings,
  tokens: Oidc.TokenEndpointResponse,
  previous?: CachedTokens,
): CachedTokens {
  const now = Math.floor(Date.now() / 1000);
  return {
    issuer: settings.issuer,
    clientId: settings.clientId,
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token ?? previous?.refreshToken,
    idToken: tokens.id_token ?? previous?.idToken,
    expiresAt: now + (tokens.expires_in ?? 300),
  };
}

/** A valid access token from the cache, refreshed when it expires within the margin. */
export async function freshAccessToken(settings: OidcSettings, cache: TokenCache): Promise<CachedTokens> {
  const cached = cache.read();
  if (!cached) throw new PrismError('E_UNAUTHENTICATED', 'not logged in', { hint: 'run prismctl login' });
  if (cached.expiresAt - REFRESH_MARGIN_SECONDS > Date.now() / 1000) return cached;
  if (!cached.refreshToken)
    throw new PrismError('E_UNAUTHENTICATED', 'the login has expired', { hint: 'run prismctl login' });
  const config = await connect({ ...settings, issuer: cached.issuer, clientId: cached.clientId });
  const oidc = await openidClient();
  let tokens: Oidc.TokenEndpointResponse;
  try {
    tokens = await oidc.refreshTokenGrant(config, cached.refreshToken);
  } catch (err) {
    if (err instanceof oidc.ResponseBodyError)
      throw new PrismError('E_UNAUTHENTICATED', `the login could not be refreshed (${err.error})`, {
        hint: 'run prismctl login',
      });
    throw err;
  }
  const next = toCache(settings, tokens, cached);
  cache.write(next);
  return next;
}

/** Revokes the refresh token where the provider offers revocation, then deletes the cache. */
export async function logout(settings: OidcSettings, cache: TokenCache): Promise<{ revoked: boolean }> {
  let cached: CachedTokens | undefined;
  try {
    cached = cache.read();
  } catch {
    cached = undefined;
  }
  let revoked = false;
  if (cached?.refreshToken) {
    try {
      const config = await connect({ ...settings, issuer: cached.issuer, clientId: cached.clientId });
      if (config.serverMetadata().revocation_endpoint) {
        const oidc = await openidClient();
        await oidc.tokenRevocation(config, cached.refreshToken, { token_type_hint: 'refresh_token' });
        revoked = true;
      }
    } catch {
      revoked = false;
    }
  }
  cache.delete();
  return { revoked };
}

/** What the cached access token says: subject, email, groups, issuer and expiry. */
export function describe(tokens: CachedTokens): {
  subject: string;
  email?: string;
  groups: string[];
  issuer: string;
  expiresAt: string;
} {
  const claims = decodeJwt(tokens.accessToken);
  return {
    subject: String(claims.sub ?? ''),
    email: typeof claims.email === 'string' ? claims.email : undefined,
    groups: Array.isArray(claims.groups) ? claims.groups.map(String) : [],
    issuer: tokens.issuer,
    expiresAt: new Date(tokens.expiresAt * 1000).toISOString(),
  };
}
