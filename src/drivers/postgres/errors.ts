/**
 * What a PostgreSQL failure means, decided once for every part of Prism that talks to PostgreSQL
 * (the postgres driver and the admin's PostgreSQL store):
 *
 * - `unavailable`: the server cannot be reached, dropped the connection, is shutting down or
 *   starting, or is out of resources. Waiting may help; a driver reports it as BackendDownError.
 * - `refused`: the server answered but will not serve this client as configured (authentication,
 *   a missing database, a read-only server, a missing privilege). Waiting does not help; the
 *   setup must change.
 * - `statement`: the statement itself failed (syntax, a constraint, a type): permanent, and the
 *   connection is fine.
 *
 * Node socket errors carry errno names in `code`; the server's carry a five-character SQLSTATE
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html); pg raises a few connection
 * failures with neither, which only their message tells apart.
 */
export type PostgresFailureKind = 'unavailable' | 'refused' | 'statement';

export interface PostgresFailure {
  kind: PostgresFailureKind;
  /** A short phrase for messages, e.g. "cannot reach the server". */
  reason: string;
}

const UNREACHABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'EAI_AGAIN',
]);

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** pg's connection failures that carry no code. */
const CONNECTION_LOST =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed|Query read timeout/i;

/** SQLSTATE → failure, most specific first; an unlisted code is a statement error. */
const BY_SQLSTATE: ReadonlyArray<[RegExp, PostgresFailure]> = [
  [/^53100$/, { kind: 'unavailable', reason: 'the server disk is full' }],
  [/^08/, { kind: 'unavailable', reason: 'connection failure' }],
  [/^53/, { kind: 'unavailable', reason: 'the server is out of resources' }],
  [/^57P0/, { kind: 'unavailable', reason: 'the server is shutting down or starting' }],
  [/^58/, { kind: 'unavailable', reason: 'the server had a system error' }],
  [/^28/, { kind: 'refused', reason: 'authentication failed' }],
  [/^3D000$/, { kind: 'refused', reason: 'the database does not exist' }],
  [/^25006$/, { kind: 'refused', reason: 'the server is read-only' }],
  [/^42501$/, { kind: 'refused', reason: 'permission denied' }],
];

export function classifyPostgresError(err: unknown): PostgresFailure {
  if (!(err instanceof Error)) return { kind: 'statement', reason: String(err) };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (UNREACHABLE_ERRNO.has(code)) return { kind: 'unavailable', reason: 'cannot reach the server' };
    if (SQLSTATE.test(code)) {
      const match = BY_SQLSTATE.find(([pattern]) => pattern.test(code));
      if (match) return match[1];
    }
  }
  // Connecting to a name with several addresses fails with one error per address.
  if (err instanceof AggregateError) {
    const inner = err.errors.map(classifyPostgresError).find((f) => f.kind !== 'statement');
    if (inner) return inner;
  }
  if (code === undefined && CONNECTION_LOST.test(err.message))
    return { kind: 'unavailable', reason: 'connection failure' };
  return { kind: 'statement', reason: err.message };
}

/** True when the server, not the request, failed: the caller may retry once it is back. */
export function isPostgresUnavailable(err: unknown): boolean {
  return classifyPostgresError(err).kind === 'unavailable';
}
