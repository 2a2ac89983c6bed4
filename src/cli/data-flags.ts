import { Flags } from '@oclif/core';
import { bearerTokenFor } from '../auth/bearer.js';
import type { DataClient } from '../client/data-client.js';
import { DEFAULT_PROXY_ENDPOINT } from '../client/endpoints.js';
import { dialTarget, refuseClearTextToken } from '../transport/dial.js';
import { withDevStackTls } from './dev-stack-tls.js';
import { clientTlsFlags, clientTlsFromFlags, type ClientTlsFlagValues } from './tls-flags.js';

/** Flags of every command that talks to the data plane. */
export const dataFlags = {
  proxy: Flags.string({
    description: 'Proxy endpoint: host:port, or grpcs://host:port for TLS',
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
  ...clientTlsFlags,
};

/** A data-plane client; a token bound for plaintext off this machine is refused before dialling. */
export async function dataClient(
  flags: {
    proxy: string;
    namespace: string;
    pattern?: string | undefined;
    token?: string | undefined;
    insecure?: boolean | undefined;
  } & ClientTlsFlagValues,
): Promise<DataClient> {
  const tls = withDevStackTls(flags.proxy, clientTlsFromFlags(flags));
  const target = dialTarget(flags.proxy, tls);
  const token = await bearerTokenFor(flags.token);
  refuseClearTextToken(target, token !== undefined, flags.insecure);
  const { DataClient } = await import('../client/data-client.js');
  return new DataClient(flags.proxy, {
    namespace: flags.namespace,
    pattern: flags.pattern,
    token,
    tls,
  });
}
