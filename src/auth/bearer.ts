import { prismHome } from '../config/home.js';
import { TokenCache } from './token-cache.js';

/**
 * The bearer token a command sends: --token / PRISM_TOKEN when given (CI jobs, scripts), else the
 * login cache, refreshed when it is about to expire; undefined when not logged in.
 */
export async function bearerTokenFor(explicit: string | undefined): Promise<string | undefined> {
  if (explicit) return explicit;
  const cache = new TokenCache(prismHome());
  const cached = cache.read();
  if (!cached) return undefined;
  // Loaded only for a cached login: OIDC and the config-file reader would double a kv command's start.
  const [{ freshAccessToken }, { DEFAULT_SCOPES }] = await Promise.all([
    import('./login.js'),
    import('./oidc-config.js'),
  ]);
  const tokens = await freshAccessToken(
    { issuer: cached.issuer, clientId: cached.clientId, scopes: DEFAULT_SCOPES },
    cache,
  );
  return tokens.accessToken;
}
