/**
 * Logging a development user in at the dev IdP (src/auth/dev-idp.ts) the way prismctl does: a
 * device login whose browser side the test plays (test/integration/auth/play-person.ts). The
 * access token is a real JWT for the `prism` audience, signed by the IdP's key, with `groups`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevIdp } from '../../src/auth/dev-idp.js';
import { deviceLogin } from '../../src/auth/login.js';
import { DEFAULT_SCOPES } from '../../src/auth/oidc-config.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { approveDeviceCode } from '../integration/auth/play-person.js';

/**
 * The access token of a device login as `email`; starts the IdP unless it is running. The tokens
 * are cached in `home` (PRISM_HOME) when given, so the CLI run with that home calls as that user.
 */
export async function loginAs(
  idp: DevIdp,
  email: string,
  home = mkdtempSync(join(tmpdir(), 'prism-dev-login-')),
): Promise<string> {
  const issuer = idp.issuer || (await idp.start());
  const tokens = await deviceLogin(
    { issuer, clientId: 'prismctl', scopes: DEFAULT_SCOPES },
    new TokenCache(home),
    (p) => void approveDeviceCode(p.verificationUri, p.userCode, email),
    { intervalSeconds: 0.05 },
  );
  return tokens.accessToken;
}

/** Alice's access token (group `commerce`). */
export function loginAlice(idp: DevIdp, home?: string): Promise<string> {
  return loginAs(idp, 'alice@example.com', home);
}
