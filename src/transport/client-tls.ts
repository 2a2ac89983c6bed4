import { PrismError } from '../errors.js';
import { isLoopbackHost, type Endpoint } from './listen-address.js';
import { readPem } from './pem-file.js';

// What a client's TLS settings mean, without loading grpc-js (dial.ts builds grpc-js credentials
// from them; src/client/grpc-http2.ts builds node:http2 ones).

/** How a client reaches a server: `--tls`, `--ca-file`, `--tls-server-name`, client certificate. */
export interface ClientTls {
  /** Use TLS even though the endpoint is written host:port. */
  tls?: boolean | undefined;
  /** PEM CA bundle the server's certificate must chain to (default: the system's roots). */
  caFile?: string | undefined;
  /** The name the server's certificate must carry (default: the endpoint's host). */
  serverName?: string | undefined;
  /** PEM client certificate and key, for servers that require them (mTLS). */
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /**
   * Read the CA and client certificate files again as they change (every 5 s), so that a
   * long-running process (the proxy following its admin) picks up a rotated certificate without a
   * restart. Off for one-shot commands: the file watcher would hold their process open.
   */
  followFiles?: boolean | undefined;
}

/**
 * TLS when the endpoint is `grpcs://`, or when any TLS setting is given; plaintext for a bare
 * host:port, as before TLS existed.
 */
export function usesTls(endpoint: Endpoint, tls: ClientTls = {}): boolean {
  return (
    endpoint.tls ||
    tls.tls === true ||
    tls.caFile !== undefined ||
    tls.serverName !== undefined ||
    tls.certFile !== undefined
  );
}

/**
 * The CLI never sends a bearer token in clear text off the machine: refused before any socket is
 * opened, unless the person said --insecure.
 */
export function refuseClearTextToken(
  target: { endpoint: Endpoint; tls: boolean },
  hasToken: boolean,
  insecure: boolean | undefined,
): void {
  if (!hasToken || insecure || isLoopbackHost(target.endpoint.host)) return;
  if (target.tls) return;
  throw new PrismError(
    'E_USAGE',
    `refusing to send a bearer token in clear text to ${target.endpoint.address}: anyone on the network path could read and reuse it`,
    {
      hint: `use TLS (grpcs://${target.endpoint.address}, with --ca-file when a private CA signed the server's certificate), or pass --insecure if this network is trusted`,
    },
  );
}

/** The PEM files of `tls`, read now so that a bad path or a lone certificate fails before dialling. */
export function clientTlsFiles(tls: ClientTls): {
  ca: Buffer | null;
  key: Buffer | null;
  cert: Buffer | null;
} {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new PrismError('E_USAGE', 'a client certificate needs both its certificate and its key', {
      hint: 'pass --tls-client-cert and --tls-client-key together',
    });
  }
  return {
    ca: tls.caFile !== undefined ? readPem(tls.caFile, '--ca-file') : null,
    key: tls.keyFile !== undefined ? readPem(tls.keyFile, '--tls-client-key') : null,
    cert: tls.certFile !== undefined ? readPem(tls.certFile, '--tls-client-cert') : null,
  };
}
