import { Flags } from '@oclif/core';
import { bearerTokenFor } from '../auth/bearer.js';
import type { AdminClient } from '../client/admin-client.js';
import { DEFAULT_ADMIN_ENDPOINT } from '../client/endpoints.js';
import { dialTarget, refuseClearTextToken } from '../transport/dial.js';
import { withDevStackTls } from './dev-stack-tls.js';
import { clientTlsFlags, clientTlsFromFlags, type ClientTlsFlagValues } from './tls-flags.js';

/** --admin for every command that talks to the control plane. */
export const adminFlag = Flags.string({
  description: 'Control-plane endpoint: host:port, or grpcs://host:port for TLS',
  env: 'PRISM_ADMIN_ENDPOINT',
  default: DEFAULT_ADMIN_ENDPOINT,
  helpGroup: 'CONNECTION',
});

/** --admin and the TLS flags. */
export const adminFlags = { admin: adminFlag, ...clientTlsFlags };

/**
 * A control-plane client carrying the caller's token (PRISM_TOKEN or the login cache). A token
 * bound for plaintext off this machine is refused before anything is dialled. Given only an
 * endpoint, TLS comes from the endpoint (grpcs://) and PRISM_TLS_CA_FILE.
 */
export async function adminClient(
  given: string | ({ admin: string; insecure?: boolean | undefined } & ClientTlsFlagValues),
): Promise<AdminClient> {
  const flags =
    typeof given === 'string' ? { admin: given, 'ca-file': process.env.PRISM_TLS_CA_FILE } : given;
  const tls = withDevStackTls(flags.admin, clientTlsFromFlags(flags));
  const target = dialTarget(flags.admin, tls);
  const token = await bearerTokenFor(process.env.PRISM_TOKEN);
  refuseClearTextToken(target, token !== undefined, flags.insecure);
  // gRPC and the admin service's descriptors load only in commands that call the control plane.
  const { AdminClient } = await import('../client/admin-client.js');
  return new AdminClient(flags.admin, { token, tls });
}
