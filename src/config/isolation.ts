import { Isolation, type NamespaceRequest, type Pattern } from '../gen/prism/config/v1/namespace_pb.js';

/** Pattern types whose runner can run in a launched process (runner-server.ts serves their APIs). */
export const ISOLATABLE_TYPES: ReadonlySet<string> = new Set(['keyvalue', 'producer', 'consumer']);

export type IsolationLevel = 'none' | 'namespace' | 'pattern';

const LEVEL: Record<Isolation, IsolationLevel | undefined> = {
  [Isolation.UNSPECIFIED]: undefined,
  [Isolation.NONE]: 'none',
  [Isolation.NAMESPACE]: 'namespace',
  [Isolation.PATTERN]: 'pattern',
};

/**
 * Where a pattern's runner runs: its own `isolation`, else the namespace's, else none. The
 * namespace's value applies to keyvalue, producer and consumer patterns only; the others
 * (session-manager, mailbox) stay in the proxy.
 */
export function effectiveIsolation(ns: NamespaceRequest, pattern: Pattern): IsolationLevel {
  const own = LEVEL[pattern.isolation];
  if (own) return own;
  if (!ISOLATABLE_TYPES.has(pattern.type)) return 'none';
  return LEVEL[ns.isolation] ?? 'none';
}
