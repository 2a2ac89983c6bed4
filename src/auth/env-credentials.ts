import { PrismError } from '../errors.js';
import type { CredentialResolver } from '../runners/slots.js';

const ENV_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/**
 * Resolves `${ENV_VAR}` credential references: the variable holds `username:password`. Vault
 * references (`vault://...`) need a Vault session, which this resolver refuses plainly rather
 * than falling back to anything static. Never puts a secret in an error message.
 */
export const envCredentials: CredentialResolver = async (ref, slot) => {
  const env = ENV_REF.exec(ref);
  if (env) {
    const name = env[1] as string;
    const value = process.env[name];
    if (value === undefined || value === '') {
      throw new PrismError(
        'E_UNAVAILABLE',
        `${slot.namespace}/${slot.pattern}: credentials variable ${name} is not set`,
        {
          hint: `export ${name}=<username>:<password> in the environment of this process`,
        },
      );
    }
    const colon = value.indexOf(':');
    if (colon < 0) {
      return { username: value, password: '' };
    }
    return { username: value.slice(0, colon), password: value.slice(colon + 1) };
  }
  if (ref.startsWith('vault://')) {
    throw new PrismError(
      'E_UNAVAILABLE',
      `${slot.namespace}/${slot.pattern}: slot ${slot.slot} takes its credentials from Vault, and no Vault session is configured`,
      {
        hint: 'configure Vault for this process; static credentials are never used instead',
      },
    );
  }
  throw new PrismError(
    'E_INVALID_ARGUMENT',
    `${slot.namespace}/${slot.pattern}: slot ${slot.slot} has a credential reference that is neither vault:// nor \${ENV}`,
  );
};
