import type { NamespaceRequest, NamespaceResponse } from '../gen/prism/config/v1/namespace_pb.js';
import { assignNamespace } from '../admin/assign.js';
import { defaultCatalog, loadCatalog } from '../admin/catalog.js';
import { canonicalNamespace } from '../config/canonical.js';
import { validatePaths } from '../config/validate.js';
import { PrismError } from '../errors.js';

export interface ServedNamespace {
  namespace: NamespaceRequest;
  assignment: NamespaceResponse;
}

/**
 * Namespaces from local files, validated with the same rules as `namespace validate` and assigned
 * as the control plane would (standalone proxies, standalone runners, the embedded stack).
 */
export async function loadServedNamespaces(
  paths: readonly string[],
  options: { backends?: string } = {},
): Promise<ServedNamespace[]> {
  const { report, loaded } = await validatePaths(paths);
  if (report.errors > 0) {
    throw Object.assign(
      new PrismError(
        'E_INVALID_NAMESPACE',
        `${report.errors} error${report.errors === 1 ? '' : 's'} in ${paths.join(', ')}`,
      ),
      { report },
    );
  }
  const catalog = options.backends ? await loadCatalog(options.backends) : defaultCatalog();
  return loaded.map(({ request }) => {
    const namespace = canonicalNamespace(request);
    return { namespace, assignment: assignNamespace(namespace, catalog) };
  });
}
