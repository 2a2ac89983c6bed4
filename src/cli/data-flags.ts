import { Flags } from '@oclif/core';
import { DataClient, DEFAULT_PROXY_ENDPOINT } from '../client/data-client.js';

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
};

export function dataClient(flags: { proxy: string; namespace: string; pattern?: string }): DataClient {
  return new DataClient(flags.proxy, {
    namespace: flags.namespace,
    pattern: flags.pattern,
    token: process.env.PRISM_TOKEN,
  });
}
