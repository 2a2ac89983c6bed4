import type { NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';
import { PrismError } from '../../errors.js';
import { textLine } from '../../config/report-format.js';
import { validatePaths } from '../../config/validate.js';

/**
 * One namespace from a file, validated as `namespace validate` does (policy files read), for
 * testing its policies offline. `name` picks one when the file holds several.
 */
export async function loadNamespaceFile(path: string, name?: string): Promise<NamespaceRequest> {
  const { report, loaded } = await validatePaths([path]);
  const errors = report.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0)
    throw new PrismError(
      'E_INVALID_NAMESPACE',
      `${path} is invalid:\n${errors.map(textLine).join('').trimEnd()}`,
      {
        hint: `run \`prismctl namespace validate ${path}\``,
      },
    );
  const candidates = name ? loaded.filter((l) => l.request.namespace === name) : loaded;
  if (candidates.length !== 1)
    throw new PrismError(
      'E_USAGE',
      candidates.length === 0
        ? `${path} declares no namespace${name ? ` named '${name}'` : ''}`
        : `${path} declares ${candidates.length} namespaces: name one with --name`,
    );
  return candidates[0]!.request;
}
