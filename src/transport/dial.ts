import { isIP } from 'node:net';
import { credentials, experimental, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { PrismError } from '../errors.js';
import { LastGoodCertificates } from './certificate-files.js';
import { CLIENT_OPTIONS } from './limits.js';
import { isLoopbackHost, parseEndpoint, type Endpoint } from './listen-address.js';
import { readPem } from './server-tls.js';

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

export interface DialTarget {
  endpoint: Endpoint;
  tls: boolean;
  credentials: ChannelCredentials;
  options: ChannelOptions;
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

/** Credentials and channel options for `endpoint`; files are read now, so a bad path fails here. */
export function dialTarget(endpointText: string, tls: ClientTls = {}): DialTarget {
  const endpoint = parseEndpoint(endpointText);
  if (!usesTls(endpoint, tls)) {
    return { endpoint, tls: false, credentials: credentials.createInsecure(), options: CLIENT_OPTIONS };
  }
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new PrismError('E_USAGE', 'a client certificate needs both its certificate and its key', {
      hint: 'pass --tls-client-cert and --tls-client-key together',
    });
  }
  const ca = tls.caFile !== undefined ? readPem(tls.caFile, '--ca-file') : null;
  const key = tls.keyFile !== undefined ? readPem(tls.keyFile, '--tls-client-key') : null;
  const cert = tls.certFile !== undefined ? readPem(tls.certFile, '--tls-client-cert') : null;
  if (isIP(endpoint.host) && tls.serverName === undefined) quietIpServerNameWarning();
  const options: ChannelOptions = { ...CLIENT_OPTIONS };
  if (tls.serverName !== undefined) {
    options['grpc.ssl_target_name_override'] = tls.serverName;
    options['grpc.default_authority'] = tls.serverName;
  }
  return { endpoint, tls: true, credentials: clientCredentials(tls, ca, key, cert), options };
}

function clientCredentials(tls: ClientTls, ca: Buffer | null, key: Buffer | null, cert: Buffer | null) {
  if (!tls.followFiles || (tls.caFile === undefined && tls.certFile === undefined)) {
    return credentials.createSsl(ca, key, cert);
  }
  const files = new LastGoodCertificates(
    { certFile: tls.certFile, keyFile: tls.keyFile, caFile: tls.caFile },
    {
      ...(key && cert ? { identity: { certificate: cert, privateKey: key } } : {}),
      ...(ca ? { ca: { caCertificate: ca } } : {}),
    },
  );
  return experimental.createCertificateProviderChannelCredentials(files, key && cert ? files : null);
}

/**
 * The CLI never sends a bearer token in clear text off the machine: refused before any socket is
 * opened, unless the person said --insecure.
 */
export function refuseClearTextToken(
  target: DialTarget,
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

let quiet = false;
/**
 * grpc-js sends the dialled host as the TLS ServerName even when it is an IP address, and Node
 * then prints DEP0123 on the CLI's stderr. The certificate is still checked against the IP, so
 * only that one warning is dropped.
 */
function quietIpServerNameWarning(): void {
  if (quiet) return;
  quiet = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const [, type, code] = args;
    const dep = typeof type === 'object' && type !== null ? (type as { code?: string }).code : code;
    if (dep === 'DEP0123') return;
    emit(...args);
  }) as typeof process.emitWarning;
}
