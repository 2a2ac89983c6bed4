import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { PrismError } from '../errors.js';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  scopes: string;
}

export const DEFAULT_SCOPES = 'openid email profile groups offline_access';

/**
 * OIDC settings: flags, then PRISM_OIDC_ISSUER / PRISM_OIDC_CLIENT_ID, then `oidc` in
 * $PRISM_HOME/config.yaml.
 */
export function oidcSettings(
  home: string,
  flags: { issuer?: string; clientId?: string; scopes?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): OidcSettings {
  let file: { issuer?: string; client_id?: string; scopes?: string | string[] } = {};
  try {
    const doc = yaml.load(readFileSync(join(home, 'config.yaml'), 'utf8')) as
      { oidc?: typeof file } | undefined;
    file = doc?.oidc ?? {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new PrismError(
        'E_INPUT_UNREADABLE',
        `cannot read ${join(home, 'config.yaml')}: ${(err as Error).message}`,
      );
  }
  const issuer = flags.issuer ?? env.PRISM_OIDC_ISSUER ?? file.issuer;
  if (!issuer)
    throw new PrismError('E_USAGE', 'no OIDC issuer configured', {
      hint: 'pass --issuer, set PRISM_OIDC_ISSUER, or set oidc.issuer in $PRISM_HOME/config.yaml',
    });
  const scopes =
    flags.scopes ?? (Array.isArray(file.scopes) ? file.scopes.join(' ') : file.scopes) ?? DEFAULT_SCOPES;
  return {
    issuer,
    clientId: flags.clientId ?? env.PRISM_OIDC_CLIENT_ID ?? file.client_id ?? 'prismctl',
    scopes,
  };
}
