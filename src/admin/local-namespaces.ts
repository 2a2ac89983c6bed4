import type { NamespaceRequest, NamespaceResponse } from '../gen/prism/config/v1/namespace_pb.js';
import { assignNamespace } from './assign.js';
import { defaultCatalog, loadCatalog } from './catalog.js';
import { canonicalNamespace } from '../config/canonical.js';
import { validatePaths } from '../config/validate.js';
import { PrismError } from '../errors.js';

/** A namespace with its assignment; the proxy's ServedNamespace has the same shape. */
export interface AssignedNamespace {
  namespace: NamespaceRequest;
  assignment: NamespaceResponse;
}

/**
 * Namespaces from local files, validated with the same rules as `namespace validate` and assigned
 * as the control plane does (layers 3 and 4): the control plane's pipeline run locally, for
 * standalone proxies, standalone runners and the embedded stack. Commands hand the result to the
 * proxy, so the proxy never imports the control plane.
 */
export async function loadServedNamespaces(
  paths: readonly string[],
  options: { backends?: string } = {},
): Promise<AssignedNamespace[]> {
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
