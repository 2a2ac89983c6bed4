import { Flags } from '@oclif/core';
import { bearerTokenFor } from '../auth/bearer.js';
import type { DataClient } from '../client/data-client.js';
import { DEFAULT_PROXY_ENDPOINT } from '../client/endpoints.js';

/** Flags of every command that talks to the data plane. */
export const dataFlags = {
  proxy: Flags.string({
    description: 'Proxy endpoint host:port',
    env: 'PRISM_PROXY_ENDPOINT',
    default: DEFAULT_PROXY_ENDPOINT,
    helpGroup: 'CONNECTION',
  }),
  namespace: Flags.string({
    char: 'n',
    description: 'Namespace',
    env: 'PRISM_NAMESPACE',
    required: true,
    helpGroup: 'CONNECTION',
  }),
  pattern: Flags.string({
    description: 'Pattern name, when the namespace has several of the type',
    helpGroup: 'CONNECTION',
  }),
  token: Flags.string({
    description: 'Bearer token (default: the login cache)',
    env: 'PRISM_TOKEN',
    helpGroup: 'CONNECTION',
  }),
};

export async function dataClient(flags: {
  proxy: string;
  namespace: string;
  pattern?: string;
  token?: string;
}): Promise<DataClient> {
  const { DataClient } = await import('../client/data-client.js');
  return new DataClient(flags.proxy, {
    namespace: flags.namespace,
    pattern: flags.pattern,
    token: await bearerTokenFor(flags.token),
  });
}
