import type { Metadata } from '@grpc/grpc-js';

/** Wire constants shared by the clients, the proxy and the runners. */
export const NAMESPACE_HEADER = 'x-prism-namespace';
export const PATTERN_HEADER = 'x-prism-pattern';
export const AUTHORIZATION_HEADER = 'authorization';

export function metadataValue(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return value === undefined ? undefined : value.toString();
}
