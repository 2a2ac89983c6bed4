import { Isolation, type NamespaceRequest, type Pattern } from '../gen/prism/config/v1/namespace_pb.js';

/** Pattern types whose runner can run in a launched process (runner-server.ts serves their APIs). */
export const ISOLATABLE_TYPES: ReadonlySet<string> = new Set(['keyvalue', 'producer', 'consumer']);

/**
 * Pattern types from pattern modules (src/config/external-patterns.ts): their runners always run
 * in launched processes, so code from outside prismctl never runs inside the proxy.
 */
export const LAUNCHED_ONLY_TYPES: ReadonlySet<string> = new Set<string>();

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
  if (LAUNCHED_ONLY_TYPES.has(pattern.type))
    return LEVEL[ns.isolation] === 'namespace' ? 'namespace' : 'pattern';
  if (!ISOLATABLE_TYPES.has(pattern.type)) return 'none';
  return LEVEL[ns.isolation] ?? 'none';
}
