import { join } from 'node:path';

/** The namespaces `dev up` applies when --namespaces is not given. */
export function defaultNamespacePaths(packageRoot: string): string[] {
  return [join(packageRoot, 'examples/namespaces/embedded-playground.yaml')];
}
