import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import { validatePaths } from '../config/validate.js';
import { PrismError } from '../errors.js';

/** Backends that run inside the embedded stack's own process. */
export const EMBEDDED_BACKENDS: ReadonlySet<string> = new Set(['memstore', 'sqlite']);

export interface EmbeddedSelection {
  runnable: Array<{ request: NamespaceRequest; file: string }>;
  skipped: Array<{ namespace: string; reason: string }>;
}

/** The backends of a namespace that the embedded stack cannot run, sorted, without repeats. */
export function foreignBackends(ns: NamespaceRequest): string[] {
  const backends = ns.patterns.flatMap((p) => Object.values(p.slots).map((s) => s.backend));
  return [...new Set(backends.filter((b) => !EMBEDDED_BACKENDS.has(b)))].sort();
}

/** Splits namespaces into those the embedded stack can serve and those it must skip (with why). */
export function selectEmbedded(
  loaded: ReadonlyArray<{ request: NamespaceRequest; file: string }>,
): EmbeddedSelection {
  const selection: EmbeddedSelection = { runnable: [], skipped: [] };
  for (const entry of loaded) {
    const foreign = foreignBackends(entry.request);
    if (foreign.length === 0) selection.runnable.push(entry);
    else
      selection.skipped.push({
        namespace: entry.request.namespace,
        reason: `needs ${foreign.join(', ')}, which only the Docker stack runs`,
      });
  }
  return selection;
}

/** Reads and validates the files; an invalid file stops the run before anything starts. */
export async function loadEmbeddedNamespaces(paths: readonly string[]): Promise<EmbeddedSelection> {
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
  return selectEmbedded(loaded.map((l) => ({ request: l.request, file: l.document.file })));
}
