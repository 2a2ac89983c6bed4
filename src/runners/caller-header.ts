import { Metadata } from '@grpc/grpc-js';
import { PrismError } from '../errors.js';
import type { CallerSession } from './types.js';

/**
 * The caller a proxy authenticated, as it travels to a launched runner process: JSON
 * `{subject, tenant, roles, expiresAt?}` in this binary metadata key. A runner believes it only on
 * its private Unix socket, where the only peer is the proxy that launched it, and on TCP with
 * mutual TLS, where every peer showed a client certificate the runner trusts; anywhere else a
 * call that carries it is refused (docs/architecture.md, "Isolation and the launcher").
 */
export const CALLER_HEADER = 'x-prism-caller-bin';

export function setCaller(metadata: Metadata, session: CallerSession): void {
  metadata.set(CALLER_HEADER, encodeCaller(session));
}

/** The header's value: the session as JSON (an HTTP/2 client sends it base64-encoded, as -bin keys go). */
export function encodeCaller(session: CallerSession): Buffer {
  const { subject, tenant, roles, expiresAt } = session;
  return Buffer.from(JSON.stringify({ subject, tenant, roles, ...(expiresAt ? { expiresAt } : {}) }));
}

/** The caller named by the header; undefined when the call carries none. */
export function callerOf(metadata: Metadata, trusted: boolean): CallerSession | undefined {
  const value = metadata.get(CALLER_HEADER)[0];
  if (value === undefined) return undefined;
  if (!trusted) {
    throw new PrismError(
      'E_PERMISSION_DENIED',
      `${CALLER_HEADER} is accepted only from the proxy that launched this runner (Unix socket) or from a peer with a trusted client certificate (TCP with --tls-client-ca)`,
    );
  }
  try {
    const raw = JSON.parse(Buffer.isBuffer(value) ? value.toString('utf8') : value) as Partial<CallerSession>;
    if (typeof raw.subject !== 'string' || !Array.isArray(raw.roles)) throw new Error('shape');
    return {
      subject: raw.subject,
      tenant: typeof raw.tenant === 'string' ? raw.tenant : '',
      roles: raw.roles.map(String),
      ...(typeof raw.expiresAt === 'number' ? { expiresAt: raw.expiresAt } : {}),
    };
  } catch {
    throw new PrismError('E_INVALID_ARGUMENT', `${CALLER_HEADER} is not a caller session`);
  }
}
