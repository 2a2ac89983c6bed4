import { isIP } from 'node:net';
import { credentials, experimental, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { LastGoodCertificates } from './certificate-files.js';
import { CLIENT_OPTIONS } from './limits.js';
import { parseEndpoint, type Endpoint } from './listen-address.js';
import { clientTlsFiles, usesTls, type ClientTls } from './client-tls.js';

export { refuseClearTextToken, usesTls, type ClientTls } from './client-tls.js';

export interface DialTarget {
  endpoint: Endpoint;
  tls: boolean;
  credentials: ChannelCredentials;
  options: ChannelOptions;
}

/** Credentials and channel options for `endpoint`; files are read now, so a bad path fails here. */
export function dialTarget(endpointText: string, tls: ClientTls = {}): DialTarget {
  const endpoint = parseEndpoint(endpointText);
  if (!usesTls(endpoint, tls)) {
    return { endpoint, tls: false, credentials: credentials.createInsecure(), options: CLIENT_OPTIONS };
  }
  const { ca, key, cert } = clientTlsFiles(tls);
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
