import type { Metadata } from '@grpc/grpc-js';
import type { CallerSession } from './types.js';

/** Finds the runner a call is for (by namespace and pattern metadata) and who is calling. */
export type RunnerResolver<R> = (
  metadata: Metadata,
  method: string,
) => Promise<{ runner: R; session: CallerSession }>;

export const NAMESPACE_HEADER = 'x-prism-namespace';
export const PATTERN_HEADER = 'x-prism-pattern';

export const ANONYMOUS: CallerSession = Object.freeze({
  subject: 'anonymous',
  tenant: '',
  roles: [],
}) as CallerSession;

export function metadataValue(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return value === undefined ? undefined : value.toString();
}
