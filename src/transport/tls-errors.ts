import { PrismError } from '../errors.js';
import { GrpcStatus, type CallError } from './status-codes.js';
import { withoutSystemCaAdvice } from './tls-message.js';

/** How the failed call dialled: over TLS or not, with a client certificate or not. */
export interface DialMode {
  tls: boolean;
  clientCertificate: boolean;
}

const UNTRUSTED =
  /unable to (get local issuer|verify the first) certificate|self[- ]signed certificate|certificate has expired|certificate is not yet valid|unable to get issuer certificate/i;
const WRONG_NAME = /Hostname\/IP does not match|altnames/i;
const CERT_REFUSED = /certificate required|bad certificate|unknown ca|alert number (42|48|116)/i;
const NOT_TLS = /wrong version number|packet length too long|record layer failure|http request/i;
/** The peer accepted the TCP connection and closed it before HTTP/2 began. */
const CLOSED_EARLY = /Failed to connect|Connection dropped|socket hang up|ECONNRESET/i;

/**
 * A connection that failed for a TLS reason, told in words with the flag that fixes it. grpc-js
 * (and src/client/grpc-http2.ts) report these as UNAVAILABLE with OpenSSL's text in the details.
 */
export function tlsFailure(err: CallError, endpoint: string, mode: DialMode): PrismError | undefined {
  if (err.code !== GrpcStatus.UNAVAILABLE) return undefined;
  const details = err.details ?? '';
  if (UNTRUSTED.test(details)) {
    return new PrismError(
      'E_UNREACHABLE',
      `the TLS certificate of ${endpoint} is not trusted: ${reason(details)}`,
      {
        hint: "pass the CA that signed the server's certificate with --ca-file <ca.pem> (or PRISM_TLS_CA_FILE)",
      },
    );
  }
  if (WRONG_NAME.test(details)) {
    return new PrismError(
      'E_UNREACHABLE',
      `the TLS certificate of ${endpoint} is for another name: ${reason(details)}`,
      { hint: 'dial a name the certificate carries, or name one it carries with --tls-server-name' },
    );
  }
  if (CERT_REFUSED.test(details)) {
    return refusedCertificate(endpoint, reason(details), mode);
  }
  if (mode.tls && NOT_TLS.test(details)) {
    return new PrismError('E_UNREACHABLE', `${endpoint} does not speak TLS: ${reason(details)}`, {
      hint: 'dial it as host:port without --tls/--ca-file, or start the server with --tls-cert/--tls-key',
    });
  }
  if (CLOSED_EARLY.test(details) && !/ECONNREFUSED/.test(details)) {
    if (mode.tls && mode.clientCertificate) {
      return refusedCertificate(endpoint, 'the connection was closed after the TLS handshake', mode);
    }
    if (!mode.tls) {
      return new PrismError('E_UNREACHABLE', `${endpoint} closed a plaintext connection: it may serve TLS`, {
        hint: "dial grpcs://host:port (with --ca-file when a private CA signed the server's certificate)",
      });
    }
  }
  return undefined;
}

function refusedCertificate(endpoint: string, why: string, mode: DialMode): PrismError {
  return new PrismError('E_UNAUTHENTICATED', `${endpoint} refused this client's certificate: ${why}`, {
    hint: mode.clientCertificate
      ? 'the server accepts client certificates signed by its --tls-client-ca: pass one with --tls-client-cert/--tls-client-key'
      : 'the server requires a client certificate (mTLS): pass --tls-client-cert and --tls-client-key',
  });
}

/** OpenSSL's words without grpc-js's and OpenSSL's wrapping. */
function reason(details: string): string {
  const ssl = /SSL routines:[^:]*:([^:]+):/.exec(details);
  if (ssl?.[1]) return ssl[1];
  const text =
    /Last error: (?:Error(?: \[[A-Z_]+\])?: )?([^\n]*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?(?:\. Resolution note:.*)?$/m.exec(
      details,
    );
  return withoutSystemCaAdvice(text?.[1] ?? details)
    .replace(/\.$/, '')
    .trim();
}
