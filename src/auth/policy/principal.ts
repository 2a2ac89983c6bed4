import type { VerifiedIdentity } from '../verify.js';
import type { PolicyPrincipal } from './policy-set.js';

/** The principal policies see for a verified token. */
export function principalOf(identity: VerifiedIdentity): PolicyPrincipal {
  return {
    subject: identity.subject,
    email: identity.email,
    tenant: identity.tenant,
    groups: identity.groups,
    scopes: identity.scopes,
    claims: identity.claims ?? {},
    issuedAt: identity.issuedAt,
  };
}
