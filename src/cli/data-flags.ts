import { Flags } from '@oclif/core';
import { bearerTokenFor } from '../auth/bearer.js';
import type { DataClient } from '../client/data-client.js';
import type { KeyValueCalls } from '../client/kv-client.js';
import { DEFAULT_PROXY_ENDPOINT } from '../client/endpoints.js';
import { refuseClearTextToken } from '../transport/client-tls.js';
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

export type DataFlagValues = {
  proxy: string;
  namespace: string;
  pattern?: string | undefined;
  token?: string | undefined;
  insecure?: boolean | undefined;
} & ClientTlsFlagValues;

/** A data-plane client; a token bound for plaintext off this machine is refused before dialling. */
export async function dataClient(flags: DataFlagValues): Promise<DataClient> {
  const tls = withDevStackTls(flags.proxy, clientTlsFromFlags(flags));
  const { dialTarget } = await import('../transport/dial.js');
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

/**
 * The kv commands' client: KeyValue over node:http2 (src/client/kv-client.ts), the same calls and
 * errors as dataClient's without loading grpc-js; the same refusal of a clear-text token.
 */
export async function keyValueClient(flags: DataFlagValues): Promise<KeyValueCalls> {
  const tls = withDevStackTls(flags.proxy, clientTlsFromFlags(flags));
  const { GrpcHttp2Channel, KeyValueClient } = await import('../client/kv-client.js');
  const channel = new GrpcHttp2Channel(flags.proxy, tls); // reads the TLS files now, as dialTarget
  const token = await bearerTokenFor(flags.token);
  refuseClearTextToken(channel, token !== undefined, flags.insecure);
  return new KeyValueClient(
    flags.proxy,
    { namespace: flags.namespace, pattern: flags.pattern, token, tls },
    channel,
  );
}
