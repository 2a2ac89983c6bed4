import { join } from 'node:path';

/** The namespaces `dev up` applies when --namespaces is not given. */
export function defaultNamespacePaths(packageRoot: string): string[] {
  return [join(packageRoot, 'examples/namespaces/embedded-playground.yaml')];
}

/** The Docker stack applies every example; those it cannot serve are skipped with the reason. */
export function dockerNamespacePaths(packageRoot: string): string[] {
  return [join(packageRoot, 'examples/namespaces')];
}
