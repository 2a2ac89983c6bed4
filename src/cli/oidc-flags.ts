import { Flags } from '@oclif/core';

/** Where to log in; each falls back to PRISM_OIDC_* and then $PRISM_HOME/config.yaml. */
export const oidcFlags = {
  issuer: Flags.string({ description: 'OIDC issuer URL (env PRISM_OIDC_ISSUER, config oidc.issuer)' }),
  'client-id': Flags.string({
    description: 'OIDC public client id (env PRISM_OIDC_CLIENT_ID, default prismctl)',
  }),
  scopes: Flags.string({
    description: 'Scopes to request (default: openid email profile groups offline_access)',
  }),
};
