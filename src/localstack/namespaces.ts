import { clone } from '@bufbuild/protobuf';
import { NamespaceRequestSchema, type NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import { validatePaths } from '../config/validate.js';
import { PrismError } from '../errors.js';
import type { StackEndpoints } from './stack-endpoints.js';

/** Backends that run inside the embedded stack's own process. */
export const EMBEDDED_BACKENDS: ReadonlySet<string> = new Set(['memstore', 'sqlite', 'filesystem']);

export interface NamespaceSelection {
  runnable: Array<{ request: NamespaceRequest; file: string }>;
  skipped: Array<{ namespace: string; reason: string }>;
}

/** Splits namespaces into those the embedded stack can serve and those it must skip (with why). */
export function selectEmbedded(
  loaded: ReadonlyArray<{ request: NamespaceRequest; file: string }>,
): NamespaceSelection {
  return selectRunnable(loaded, { backends: EMBEDDED_BACKENDS, where: 'only the Docker stack runs' });
}

/** What a stack offers a namespace: backends, and for auth its issuer and Vault. */
export interface StackOffer {
  backends: ReadonlySet<string>;
  /** How to finish "needs kafka, which ..." */
  where: string;
  /** The issuer the stack trusts: Dex's, or dev.yaml's `issuer:`. */
  issuer?: string;
  /** The stack's Vault address when it runs Vault. */
  vault?: string;
}

/** Splits namespaces into those a stack can serve and those it must skip, saying why. */
export function selectRunnable(
  loaded: ReadonlyArray<{ request: NamespaceRequest; file: string }>,
  offer: StackOffer,
): NamespaceSelection {
  const selection: NamespaceSelection = { runnable: [], skipped: [] };
  for (const entry of loaded) {
    const ns = entry.request;
    const backends = ns.patterns.flatMap((p) => Object.values(p.slots).map((s) => s.backend));
    const missing = [...new Set(backends.filter((b) => !offer.backends.has(b)))].sort();
    let reason: string | undefined;
    if (missing.length > 0) reason = `needs ${missing.join(', ')}, which ${offer.where}`;
    else if (ns.auth?.enabled && ns.auth.issuer !== offer.issuer) {
      reason = offer.issuer
        ? `trusts issuer ${ns.auth.issuer}, and this stack's issuer is ${offer.issuer}`
        : `needs its identity provider (${ns.auth.issuer}), and this stack runs no Dex and names no issuer`;
    } else if (ns.auth?.vault?.enabled && !offer.vault) reason = 'needs Vault, and this stack runs no Vault';
    else if (ns.auth?.vault?.enabled && ns.auth.vault.address !== offer.vault) {
      reason = `uses the Vault at ${ns.auth.vault.address}, and this stack's Vault is ${offer.vault}`;
    }
    if (reason) selection.skipped.push({ namespace: ns.namespace, reason });
    else selection.runnable.push(entry);
  }
  return selection;
}

/**
 * Namespaces written for the catalog's stack, as examples/namespaces/ are (Dex's issuer and Vault
 * at their default ports), follow this stack: that issuer and that Vault address are replaced by
 * this stack's when they differ (a moved port, an `issuer:` of your own). Any other issuer or
 * Vault is left as written, and selectRunnable says why such a namespace is skipped.
 */
export function followStack<T extends { request: NamespaceRequest }>(
  loaded: readonly T[],
  catalog: StackEndpoints,
  stack: StackEndpoints,
): { loaded: T[]; followed: string[] } {
  const followed: string[] = [];
  const out = loaded.map((entry) => {
    const auth = entry.request.auth;
    const issuer =
      auth?.enabled && auth.issuer === catalog.issuer && stack.issuer !== catalog.issuer
        ? stack.issuer
        : undefined;
    const vault =
      auth?.vault?.enabled && auth.vault.address === catalog.vault && stack.vault !== catalog.vault
        ? stack.vault
        : undefined;
    if (issuer === undefined && vault === undefined) return entry;
    const request = clone(NamespaceRequestSchema, entry.request);
    if (issuer !== undefined) request.auth!.issuer = issuer;
    if (vault !== undefined) request.auth!.vault!.address = vault;
    followed.push(request.namespace);
    return { ...entry, request };
  });
  return { loaded: out, followed };
}

/** Reads and validates the files; an invalid file stops the run before anything starts. */
export async function loadEmbeddedNamespaces(paths: readonly string[]): Promise<NamespaceSelection> {
  return selectEmbedded(await loadNamespaceFiles(paths));
}

/** Validated namespaces from files and directories; any error stops the run with the report. */
export async function loadNamespaceFiles(
  paths: readonly string[],
): Promise<Array<{ request: NamespaceRequest; file: string }>> {
  const { report, loaded } = await validatePaths(paths);
  if (report.errors > 0) {
    throw Object.assign(
      new PrismError(
        'E_INVALID_NAMESPACE',
        `${report.errors} error${report.errors === 1 ? '' : 's'} in ${paths.join(', ')}; the stack was not started`,
      ),
      { report },
    );
  }
  return loaded.map((l) => ({ request: l.request, file: l.document.file }));
}
