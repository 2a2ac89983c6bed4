import { join } from 'node:path';
import { checkConfigFile, ConfigFileError, type ConfigFormat } from '../config/config-file.js';
import { SCHEMA_DRAFT } from '../config/json-schema.js';
import { PrismError } from '../errors.js';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  scopes: string;
}

export const DEFAULT_SCOPES = 'openid email profile groups offline_access';

interface PrismConfigFile {
  oidc?: { issuer?: string; client_id?: string; scopes?: string | string[] };
}

/** $PRISM_HOME/config.yaml: only `oidc` (docs/identity.md). */
export const PRISM_CONFIG_SCHEMA = {
  $schema: SCHEMA_DRAFT,
  title: 'prismctl configuration ($PRISM_HOME/config.yaml)',
  type: 'object',
  properties: {
    oidc: {
      type: 'object',
      description: 'where `prismctl login` logs in',
      properties: {
        issuer: {
          type: 'string',
          pattern: '^https?://[^\\s]+$',
          description: 'the http(s) URL of the OpenID issuer',
          examples: ['https://login.example.com/realms/prism'],
        },
        client_id: { type: 'string', minLength: 1 },
        scopes: {
          description: 'the scopes as one space-separated string or a list',
          anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
        },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
};

export const PRISM_CONFIG_FORMAT: ConfigFormat<PrismConfigFile> = {
  title: 'prismctl configuration',
  schema: PRISM_CONFIG_SCHEMA,
  hint: 'see docs/identity.md: config.yaml holds `oidc: { issuer, client_id, scopes }`',
  empty: {},
};

/** The `oidc` block of $PRISM_HOME/config.yaml; a missing file is an empty one. */
function configFileOidc(home: string): NonNullable<PrismConfigFile['oidc']> {
  const file = join(home, 'config.yaml');
  const { value, diagnostics } = checkConfigFile(file, PRISM_CONFIG_FORMAT);
  if (diagnostics.length === 1 && diagnostics[0]!.rule === 'E_FILE_NOT_FOUND') return {};
  if (!value)
    throw new ConfigFileError(file, PRISM_CONFIG_FORMAT.title, diagnostics, PRISM_CONFIG_FORMAT.hint);
  return value.oidc ?? {};
}

/**
 * OIDC settings: flags, then PRISM_OIDC_ISSUER / PRISM_OIDC_CLIENT_ID, then `oidc` in
 * $PRISM_HOME/config.yaml.
 */
export function oidcSettings(
  home: string,
  flags: { issuer?: string; clientId?: string; scopes?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): OidcSettings {
  const file = configFileOidc(home);
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
