import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import { validatePaths } from '../config/validate.js';
import { PrismError } from '../errors.js';

/** Backends that run inside the embedded stack's own process. */
export const EMBEDDED_BACKENDS: ReadonlySet<string> = new Set(['memstore', 'sqlite']);

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

/** What a stack offers a namespace: backends, and for auth the issuer and whether Vault runs. */
export interface StackOffer {
  backends: ReadonlySet<string>;
  /** How to finish "needs kafka, which ..." */
  where: string;
  /** Dex's issuer when the stack runs Dex. */
  issuer?: string;
  vault?: boolean;
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
        ? `trusts issuer ${ns.auth.issuer}, and this stack's Dex is ${offer.issuer}`
        : `needs its identity provider (${ns.auth.issuer}), and this stack runs no Dex`;
    } else if (ns.auth?.vault?.enabled && !offer.vault) reason = 'needs Vault, and this stack runs no Vault';
    if (reason) selection.skipped.push({ namespace: ns.namespace, reason });
    else selection.runnable.push(entry);
  }
  return selection;
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
