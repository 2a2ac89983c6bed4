import type { NamespaceRequest, NamespaceResponse } from '../gen/prism/config/v1/namespace_pb.js';

/**
 * A namespace as the proxy serves it: the canonical request and the control plane's assignment
 * (from the admin over gRPC, or from admin/local-namespaces.ts for files).
 */
export interface ServedNamespace {
  namespace: NamespaceRequest;
  assignment: NamespaceResponse;
}
