/**
 * The bearer token a proxy shows the control plane (RegisterProxy, Heartbeat), so an
 * auth-enabled admin grants it the proxy action (a proxy group, or scope prism:proxy). From
 * --admin-token-file (0600 or stricter, else refused), then PRISM_ADMIN_TOKEN, then the service
 * identity's JWT (--vault-jwt-file, PRISM_VAULT_JWT, the Kubernetes service-account token).
 * The token is read again for every call, so a rotated file (a projected Kubernetes token, a
 * renewed secret) is picked up without a restart. Nothing here logs the token.
 */
import { readFileSync, statSync } from 'node:fs';
import { PrismError } from '../errors.js';
import { serviceIdentity } from './vault-sessions.js';

export interface AdminTokenOptions {
  /** --admin-token-file. */
  file?: string;
  /** --vault-jwt-file: the service identity's JWT file. */
  jwtFile?: string;
  env?: NodeJS.ProcessEnv;
  kubernetesTokenFile?: string;
}

export interface AdminTokenSource {
  /** Where the token comes from, for logs: a path, a variable name, or 'none'. */
  source: string;
  /** The current token; undefined when the proxy has none (an admin without auth). */
  token(): string | undefined;
}

/** Chooses where the proxy's admin token comes from; the file is checked now and at every read. */
export function adminTokenSource(options: AdminTokenOptions = {}): AdminTokenSource {
  const env = options.env ?? process.env;
  if (options.file !== undefined && options.file !== '') {
    const file = options.file;
    readTokenFile(file);
    return { source: file, token: () => readTokenFile(file) };
  }
  const fromEnv = env.PRISM_ADMIN_TOKEN?.trim();
  if (fromEnv) return { source: 'PRISM_ADMIN_TOKEN', token: () => fromEnv };
  const identity = jwtIdentity(options, env);
  if (identity) return { source: identity.source, token: () => jwtIdentity(options, env)?.jwt };
  return { source: 'none', token: () => undefined };
}

function jwtIdentity(
  options: AdminTokenOptions,
  env: NodeJS.ProcessEnv,
): { jwt: string; source: string } | undefined {
  let identity;
  try {
    identity = serviceIdentity({
      env,
      ...(options.jwtFile !== undefined ? { jwtFile: options.jwtFile } : {}),
      ...(options.kubernetesTokenFile !== undefined
        ? { kubernetesTokenFile: options.kubernetesTokenFile }
        : {}),
    });
  } catch {
    return undefined;
  }
  return 'jwt' in identity ? identity : undefined;
}

/** Reads a token file that only its owner may read; E_USAGE otherwise. */
export function readTokenFile(file: string): string {
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch (err) {
    throw new PrismError('E_USAGE', `cannot read the admin token file ${file}`, { cause: err });
  }
  if (mode & 0o077) {
    throw new PrismError(
      'E_USAGE',
      `the admin token file ${file} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); refusing to use it`,
      { hint: `run: chmod 600 ${file}` },
    );
  }
  const token = readFileSync(file, 'utf8').trim();
  if (token === '') throw new PrismError('E_USAGE', `the admin token file ${file} is empty`);
  return token;
}
