import type { Metadata } from '@grpc/grpc-js';
import { PrismError } from '../errors.js';
import type { ServedNamespace } from '../proxy/served-namespace.js';
import type { ProxyAuthenticate } from '../proxy/server.js';
import { ANONYMOUS, type CallFacts } from '../runners/call-context.js';
import type { CallerSession } from '../runners/types.js';
import { clientIpOf, PolicyAuthorizer } from './policy/authorizer.js';
import { dataResources } from './policy/data-resources.js';
import { dataActionOf } from './policy/model.js';
import { principalOf } from './policy/principal.js';
import { VerifiedTokenCache } from './verified-cache.js';
import { bearerToken, TokenVerifier, type VerifierOptions } from './verify.js';

export interface ProxyAuthOptions {
  clockToleranceSeconds?: number;
  jwksCooldownMs?: number;
  /** Replaces the JWKS location discovered from each issuer (tests, air-gapped issuers). */
  jwksUri?: (issuer: string) => string | undefined;
  /** Evaluates the namespaces' policies; default: one without decision logs or metrics. */
  policies?: PolicyAuthorizer;
}

/**
 * The proxy's per-call check: namespaces with auth disabled stay anonymous; for the others the
 * bearer token is verified against the namespace's issuer and audiences, then the namespace's
 * policies decide (the default set from `access` plus `access.policies`, docs/policies.md), for
 * every key or topic the call touches. The session carries subject, tenant and groups as roles.
 */
export function proxyAuthenticator(options: ProxyAuthOptions = {}): ProxyAuthenticate {
  const verifiers = new Map<string, TokenVerifier>();
  const verified = new VerifiedTokenCache();
  const policies = options.policies ?? new PolicyAuthorizer();
  const scopeOf = (issuer: string, audiences: readonly string[]) =>
    JSON.stringify([issuer, [...audiences].sort()]);
  const verifierFor = (issuer: string, audiences: readonly string[]): TokenVerifier => {
    const key = scopeOf(issuer, audiences);
    let verifier = verifiers.get(key);
    if (!verifier) {
      const config: VerifierOptions = {
        issuer,
        audiences,
        jwksUri: options.jwksUri?.(issuer),
        clockToleranceSeconds: options.clockToleranceSeconds,
        jwksCooldownMs: options.jwksCooldownMs,
      };
      verifier = new TokenVerifier(config);
      verifiers.set(key, verifier);
    }
    return verifier;
  };

  return async (
    metadata: Metadata,
    served: ServedNamespace,
    method: string,
    call?: CallFacts & { pattern: string },
  ): Promise<CallerSession> => {
    const ns = served.namespace;
    if (!ns.auth?.enabled) return ANONYMOUS;
    if (!ns.auth.issuer || ns.auth.audiences.length === 0) {
      throw new PrismError(
        'E_UNAUTHENTICATED',
        `namespace '${ns.namespace}' enables auth without an issuer and audiences`,
        { hint: 'set auth.issuer and auth.audiences in the namespace' },
      );
    }
    const token = bearerToken(metadata);
    const { issuer, audiences } = ns.auth;
    const identity = await verified.get(scopeOf(issuer, audiences), token, () =>
      verifierFor(issuer, audiences).verify(token),
    );
    const action = dataActionOf(method, call?.patternType);
    policies.authorize(
      policies.namespaceSet(ns),
      ns.namespace,
      action,
      principalOf(identity),
      dataResources(ns, call?.pattern ?? '', method, action, call?.request),
      { now: policies.now(), clientIp: clientIpOf(call?.peer) },
    );
    return {
      subject: identity.subject,
      tenant: identity.tenant,
      roles: [...identity.groups],
      ...(identity.expiresAt !== undefined ? { expiresAt: identity.expiresAt } : {}),
    };
  };
}
