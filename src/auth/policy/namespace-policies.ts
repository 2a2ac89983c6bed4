import type { NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';
import { defaultNamespacePolicies, type NamedPolicy } from './defaults.js';
import { splitPolicies } from './source-check.js';

/** The label a namespace's policy source is reported by: its file, else its place in the namespace. */
export function policySourceLabel(ns: NamespaceRequest, index: number): string {
  const source = ns.access?.policies[index];
  return source?.file ? source.file : `access.policies[${index}]`;
}

/**
 * Every policy a namespace is evaluated with: the default set from owners and consumers, then
 * the namespace's own (`access.policies`, already loaded: a file's text is in `cedar`).
 */
export function namespacePolicies(ns: NamespaceRequest): NamedPolicy[] {
  const own = (ns.access?.policies ?? []).flatMap((source, i) =>
    splitPolicies(source.cedar, policySourceLabel(ns, i)),
  );
  return [...defaultNamespacePolicies(ns), ...own];
}
