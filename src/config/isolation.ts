import { Isolation, type NamespaceRequest, type Pattern } from '../gen/prism/config/v1/namespace_pb.js';

/** Pattern types whose runner can run in a launched process (runner-server.ts serves their APIs). */
export const ISOLATABLE_TYPES: ReadonlySet<string> = new Set(['keyvalue', 'producer', 'consumer']);

/**
 * Pattern types from pattern modules (src/config/external-patterns.ts): their runners always run
 * in launched processes, so code from outside prismctl never runs inside the proxy.
 */
export const LAUNCHED_ONLY_TYPES: ReadonlySet<string> = new Set<string>();

/** `remote`: a runner process elsewhere serves the pattern (Pattern.remote_runner). */
export type IsolationLevel = 'none' | 'namespace' | 'pattern' | 'remote';

const LEVEL: Record<Isolation, IsolationLevel | undefined> = {
  [Isolation.UNSPECIFIED]: undefined,
  [Isolation.NONE]: 'none',
  [Isolation.NAMESPACE]: 'namespace',
  [Isolation.PATTERN]: 'pattern',
};

/**
 * Where a pattern's runner runs: a remote runner when it names one, else its own `isolation`,
 * else the namespace's, else none. The
 * namespace's value applies to keyvalue, producer and consumer patterns only; the others
 * (session-manager, mailbox) stay in the proxy.
 */
export function effectiveIsolation(ns: NamespaceRequest, pattern: Pattern): IsolationLevel {
  if (pattern.remoteRunner) return 'remote';
  const own = LEVEL[pattern.isolation];
  if (own) return own;
  if (LAUNCHED_ONLY_TYPES.has(pattern.type))
    return LEVEL[ns.isolation] === 'namespace' ? 'namespace' : 'pattern';
  if (!ISOLATABLE_TYPES.has(pattern.type)) return 'none';
  return LEVEL[ns.isolation] ?? 'none';
}

/** host:port, the host a DNS name, an IPv4 address or a bracketed IPv6 address; port 1-65535. */
export function parseRemoteRunner(endpoint: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(\d{1,5})$/.exec(endpoint);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}
