import type { Metadata } from '@grpc/grpc-js';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { PrismError } from '../errors.js';

/** Asymmetric algorithms only: no HS* (a public key must never act as a shared secret), no none. */
export const ALLOWED_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;

/** At most this much clock skew is tolerated on exp and nbf (DESIGN §7: small skew). */
export const MAX_CLOCK_TOLERANCE_SECONDS = 60;

export interface VerifierOptions {
  issuer: string;
  /** The token's aud must contain one of these. */
  audiences: readonly string[];
  /** Default: jwks_uri from the issuer's discovery document. */
  jwksUri?: string;
  /** Seconds of skew on exp/nbf; capped at 60. Default 30. */
  clockToleranceSeconds?: number;
  /** Minimum time between two JWKS fetches triggered by an unknown kid. Default 30 s. */
  jwksCooldownMs?: number;
}

/** Who a verified token says the caller is. */
export interface VerifiedIdentity {
  subject: string;
  email?: string;
  groups: string[];
  tenant: string;
  issuer: string;
  /** Seconds since the epoch. */
  expiresAt?: number;
  /** When the token was issued (iat), seconds since the epoch. */
  issuedAt?: number;
  scopes: string[];
  /** The token's string, number and boolean claims as strings, for policies (never logged). */
  claims?: Record<string, string>;
}

/** The bearer token of a gRPC call, or E_UNAUTHENTICATED. */
export function bearerToken(metadata: Metadata): string {
  const header = metadata.get('authorization')[0];
  if (header === undefined) throw new PrismError('E_UNAUTHENTICATED', 'no bearer token in the call');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header.toString());
  if (!match) throw new PrismError('E_UNAUTHENTICATED', 'the authorization header is not a bearer token');
  return match[1]!;
}

/**
 * Verifies JWT access tokens of one issuer against its JWKS: signature with an allowed algorithm,
 * iss, aud, exp and nbf. The JWKS is fetched once, cached, and refetched when a token names an
 * unknown kid (key rotation), at most once per cooldown.
 */
export class TokenVerifier {
  private jwks?: ReturnType<typeof createRemoteJWKSet>;
  private readonly tolerance: number;

  constructor(private readonly options: VerifierOptions) {
    if (!options.issuer) throw new PrismError('E_USAGE', 'a token verifier needs an issuer');
    if (options.audiences.length === 0)
      throw new PrismError('E_USAGE', `a token verifier for ${options.issuer} needs at least one audience`);
    this.tolerance = Math.min(Math.max(options.clockToleranceSeconds ?? 30, 0), MAX_CLOCK_TOLERANCE_SECONDS);
  }

  async verify(token: string): Promise<VerifiedIdentity> {
    const jwks = await this.keySet();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: this.options.issuer,
        audience: [...this.options.audiences],
        algorithms: [...ALLOWED_ALGORITHMS],
        clockTolerance: this.tolerance,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (err) {
      throw rejection(err);
    }
    return identityOf(payload, this.options.issuer);
  }

  private async keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return this.jwks;
    const uri = this.options.jwksUri ?? (await discoverJwksUri(this.options.issuer));
    this.jwks = createRemoteJWKSet(new URL(uri), {
      cooldownDuration: this.options.jwksCooldownMs ?? 30_000,
      timeoutDuration: 5000,
    });
    return this.jwks;
  }
}

async function discoverJwksUri(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let body: { jwks_uri?: unknown };
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = (await res.json()) as { jwks_uri?: unknown };
  } catch (err) {
    throw new PrismError(
      'E_UNAVAILABLE',
      `cannot read the discovery document of ${issuer}: ${(err as Error).message}`,
    );
  }
  if (typeof body.jwks_uri !== 'string')
    throw new PrismError('E_UNAVAILABLE', `the discovery document of ${issuer} names no jwks_uri`);
  return body.jwks_uri;
}

function identityOf(payload: JWTPayload, issuer: string): VerifiedIdentity {
  const groups = Array.isArray(payload.groups)
    ? payload.groups.filter((g): g is string => typeof g === 'string')
    : [];
  const scope = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
  return {
    subject: payload.sub!,
    email: typeof payload.email === 'string' ? payload.email : undefined,
    groups,
    tenant: typeof payload.tenant === 'string' ? payload.tenant : '',
    issuer,
    expiresAt: payload.exp,
    ...(typeof payload.iat === 'number' ? { issuedAt: payload.iat } : {}),
    scopes: scope,
    claims: scalarClaims(payload),
  };
}

function scalarClaims(payload: JWTPayload): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload))
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      out[name] = String(value);
  return out;
}

/** Maps jose's typed failures to E_UNAUTHENTICATED with a reason; never includes the token. */
function rejection(err: unknown): PrismError {
  const reason = (() => {
    if (err instanceof errors.JWTExpired) return 'the token has expired';
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.claim === 'nbf') return 'the token is not yet valid';
      if (err.claim === 'iss') return 'the token was issued by another issuer';
      if (err.claim === 'aud') return 'the token is for another audience';
      return `the token's ${err.claim} claim is invalid`;
    }
    if (err instanceof errors.JOSEAlgNotAllowed)
      return 'the token is signed with an algorithm that is not allowed';
    if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
      return "no key of the issuer matches the token's kid and algorithm";
    if (err instanceof errors.JWKSTimeout) return 'the issuer JWKS did not answer in time';
    if (err instanceof errors.JOSENotSupported) return 'the token uses an unsupported algorithm';
    if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'the token is malformed';
    if (err instanceof errors.JOSEError) return `the token is invalid (${err.code})`;
    return 'the token could not be verified';
  })();
  if (err instanceof errors.JWKSTimeout || (!(err instanceof errors.JOSEError) && err instanceof Error))
    return new PrismError('E_UNAVAILABLE', reason, { cause: err });
  return new PrismError('E_UNAUTHENTICATED', reason);
}
