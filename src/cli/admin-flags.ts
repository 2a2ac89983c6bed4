import { Flags } from '@oclif/core';
import { bearerTokenFor } from '../auth/bearer.js';
import type { AdminClient } from '../client/admin-client.js';
import { DEFAULT_ADMIN_ENDPOINT } from '../client/endpoints.js';

/** --admin for every command that talks to the control plane. */
export const adminFlag = Flags.string({
  description: 'Control-plane endpoint host:port',
  env: 'PRISM_ADMIN_ENDPOINT',
  default: DEFAULT_ADMIN_ENDPOINT,
  helpGroup: 'CONNECTION',
});

/** A control-plane client carrying the caller's token (PRISM_TOKEN or the login cache). */
export async function adminClient(endpoint: string): Promise<AdminClient> {
  // gRPC and the admin service's descriptors load only in commands that call the control plane.
  const { AdminClient } = await import('../client/admin-client.js');
  return new AdminClient(endpoint, { token: await bearerTokenFor(process.env.PRISM_TOKEN) });
}
