import type { Metadata } from '@grpc/grpc-js';
import type { Authenticate } from '../admin/server.js';
import { PrismError } from '../errors.js';
import { PolicyAuthorizer } from './policy/authorizer.js';
import { defaultControlPlanePolicies, type NamedPolicy } from './policy/defaults.js';
import { controlActionOf } from './policy/model.js';
import type { PolicyResource } from './policy/policy-set.js';
import { principalOf } from './policy/principal.js';
import { bearerToken, TokenVerifier, type VerifiedIdentity } from './verify.js';

/** What a control-plane method needs: reading namespaces, changing them, or being a proxy. */
export type AdminAction = 'read' | 'write' | 'proxy';

const ADMIN_ACTIONS: Readonly<Record<string, AdminAction>> = {
  GetNamespace: 'read',
  ListNamespaces: 'read',
  ExportNamespace: 'read',
  GetNamespaceHistory: 'read',
  ApplyNamespace: 'write',
  DeleteNamespace: 'write',
  // The schema registry's REST API (docs/schemas.md).
  ReadSchemas: 'read',
  WriteSchemas: 'write',
  RegisterProxy: 'proxy',
  Heartbeat: 'proxy',
  GetLatestSchema: 'proxy',
};

/** The scopes that grant each action when scope mapping is on. */
export const ADMIN_SCOPES: Readonly<Record<AdminAction, string>> = {
  read: 'prism:read',
  write: 'prism:write',
  proxy: 'prism:proxy',
};

export interface AdminAuthOptions {
  issuer: string;
  audiences: readonly string[];
  /** Groups that may read and write (writers). */
  adminGroups?: readonly string[];
  /** Groups that may read only. */
  readerGroups?: readonly string[];
  /** Groups whose members (service identities) may register proxies and send heartbeats. */
  proxyGroups?: readonly string[];
  /** Also grant by the token's scopes: prism:read, prism:write, prism:proxy. */
  scopeMapping?: boolean;
  /** Replaces the JWKS location discovered from the issuer (tests, air-gapped issuers). */
  jwksUri?: string;
  clockToleranceSeconds?: number;
  /** The operator's global policies (`--policies`), evaluated with the default set. */
  policies?: readonly NamedPolicy[];
  /** Logs and counts decisions; default: one without logs or metrics. */
  authorizer?: PolicyAuthorizer;
}

/** The action a control-plane method needs; an unknown method needs write (deny by default). */
export function adminActionOf(method: string): AdminAction {
  return ADMIN_ACTIONS[method] ?? 'write';
}

/** The actions a verified identity holds on the control plane under these options. */
export function adminGrants(identity: VerifiedIdentity, options: AdminAuthOptions): Set<AdminAction> {
  const granted = new Set<AdminAction>();
  const member = (groups: readonly string[] | undefined) =>
    (groups ?? []).some((g) => identity.groups.includes(g));
  if (member(options.adminGroups)) granted.add('read').add('write');
  if (member(options.readerGroups)) granted.add('read');
  if (member(options.proxyGroups)) granted.add('proxy');
  if (options.scopeMapping) {
    for (const [action, scope] of Object.entries(ADMIN_SCOPES) as [AdminAction, string][])
      if (identity.scopes.includes(scope)) granted.add(action);
    if (granted.has('write')) granted.add('read');
  }
  return granted;
}

/**
 * The admin's per-call check: verifies the bearer token against the issuer and audiences, then
 * Cedar decides (docs/policies.md §9) with the default set, which grants read (get, list, export,
 * history) to reader or admin groups, write (apply, delete) to admin groups, and proxy
 * registration to proxy groups, or by scope when scope mapping is on, and the operator's global
 * policies. The principal recorded in the audit log is the token's email, else its subject.
 */
export function adminAuthenticator(options: AdminAuthOptions): Authenticate {
  const verifier = new TokenVerifier({
    issuer: options.issuer,
    audiences: options.audiences,
    jwksUri: options.jwksUri,
    clockToleranceSeconds: options.clockToleranceSeconds,
  });
  const authorizer = options.authorizer ?? new PolicyAuthorizer();
  const set = PolicyAuthorizer.controlPlaneSet([
    ...defaultControlPlanePolicies(options),
    ...(options.policies ?? []),
  ]);
  return async (metadata: Metadata, method: string, request?: unknown): Promise<string> => {
    const identity = await verifier.verify(bearerToken(metadata));
    const principal = identity.email ?? identity.subject;
    const action = adminActionOf(method);
    const policyAction = controlActionOf(method);
    const decision = authorizer.decide(
      set,
      'control-plane',
      policyAction,
      principalOf(identity),
      controlResourceOf(policyAction.resource, request),
      { now: authorizer.now() },
    );
    if (decision.allowed) return principal;
    const by = decision.policies.length > 0 ? `; forbidden by ${decision.policies.join(', ')}` : '';
    throw new PrismError(
      'E_PERMISSION_DENIED',
      `${principal} may not ${action} on the control plane (${method}${by})`,
      {
        hint:
          action === 'proxy'
            ? 'give the proxy a token in a proxy group (--auth-proxy-group) or with scope prism:proxy'
            : `ask an operator for a group with ${action} access on the Prism admin`,
      },
    );
  };
}

/** The namespace a control-plane request names (apply: with its team), or the control plane. */
function controlResourceOf(kind: string, request: unknown): PolicyResource {
  const req = (request ?? {}) as { name?: unknown; namespace?: { namespace?: unknown; team?: unknown } };
  if (kind !== 'Namespace') return { kind: 'ControlPlane', namespace: '' };
  if (req.namespace && typeof req.namespace.namespace === 'string')
    return {
      kind: 'Namespace',
      namespace: req.namespace.namespace,
      ...(typeof req.namespace.team === 'string' ? { team: req.namespace.team } : {}),
    };
  return { kind: 'Namespace', namespace: typeof req.name === 'string' ? req.name : '' };
}
