/**
 * The namespaces of `dev up` on Docker: a digest of their files (unchanged files are not applied
 * again), loading them for this stack, and applying the runnable ones through the admin.
 */
import { createHash } from 'node:crypto';
import { readSources } from '../config/sources.js';
import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import type { StackEvents } from './docker-stack.js';
import type { NamespaceSelection } from './namespaces.js';
import type { StackEndpoints } from './stack-endpoints.js';

/** A hash of the namespace files' names and contents. */
export async function namespaceDigest(paths: readonly string[]): Promise<string> {
  const { sources } = await readSources(paths, async () => Buffer.alloc(0));
  const hash = createHash('sha256');
  for (const { file, text } of sources) hash.update(file).update('\0').update(text).update('\0');
  return hash.digest('hex');
}

/** The namespace files, validated, with those written for the catalog's stack following this one. */
export async function loadFollowing(
  paths: string[],
  catalog: StackEndpoints,
  stack: StackEndpoints,
): Promise<{ loaded: Array<{ request: NamespaceRequest; file: string }>; followed: string[] }> {
  const { loadNamespaceFiles, followStack } = await import('./namespaces.js');
  return followStack(await loadNamespaceFiles(paths), catalog, stack);
}

/** Applies every runnable namespace through the admin at `adminEndpoint`; returns their names. */
export async function applyNamespaces(
  adminEndpoint: string,
  selection: NamespaceSelection,
  events: StackEvents,
  caFile?: string,
): Promise<string[]> {
  const { AdminClient } = await import('../client/admin-client.js');
  const client = new AdminClient(adminEndpoint, { timeoutMs: 5000, ...(caFile ? { tls: { caFile } } : {}) });
  try {
    const applied: string[] = [];
    for (const { request, file } of selection.runnable) {
      events.status('admin', `applying ${request.namespace}`);
      await client.apply({ namespace: request, dryRun: false, source: file });
      applied.push(request.namespace);
    }
    return applied;
  } finally {
    client.close();
  }
}
