import { experimental, ServerCredentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { PrismError } from '../errors.js';
import { readPem } from './pem-file.js';
import { LastGoodCertificates, loads } from './certificate-files.js';

/** `--tls-cert/--tls-key` (and `--tls-client-ca` for mTLS) of a server. */
export interface ServerTls {
  /** PEM certificate chain, leaf first. */
  certFile: string;
  /** PEM private key of the leaf. */
  keyFile: string;
  /** PEM CA bundle; when set, clients must present a certificate it signed (mTLS). */
  clientCaFile?: string;
  /** How often the files are read again (default 5 s). */
  refreshMs?: number;
}

type Update = experimental.IdentityCertificateUpdate;
type CaUpdate = experimental.CaCertificateUpdate;

/** The certificates of one server, read and checked now, then watched for changes. */
export class ServerCertificates {
  private readonly provider: LastGoodCertificates;

  constructor(readonly tls: ServerTls) {
    const cert = readPem(tls.certFile, '--tls-cert');
    const key = readPem(tls.keyFile, '--tls-key');
    const ca = tls.clientCaFile !== undefined ? readPem(tls.clientCaFile, '--tls-client-ca') : undefined;
    try {
      createSecureContext({ cert, key });
    } catch (err) {
      throw new PrismError(
        'E_USAGE',
        `${tls.certFile} and ${tls.keyFile} do not make a TLS identity: ${(err as Error).message}`,
        { hint: '--tls-cert takes the PEM certificate (chain) and --tls-key its PEM private key' },
      );
    }
    if (ca && !loads({ ca })) {
      throw new PrismError('E_USAGE', `${tls.clientCaFile} holds no PEM CA certificate`, {
        hint: '--tls-client-ca takes the PEM certificate of the CA that signs client certificates',
      });
    }
    this.provider = new LastGoodCertificates(
      { certFile: tls.certFile, keyFile: tls.keyFile, caFile: tls.clientCaFile, refreshMs: tls.refreshMs },
      {
        identity: { certificate: cert, privateKey: key },
        ...(ca ? { ca: { caCertificate: ca } } : {}),
      },
    );
  }

  get mutual(): boolean {
    return this.tls.clientCaFile !== undefined;
  }

  /** gRPC server credentials that follow the files. */
  grpcCredentials(): ServerCredentials {
    return experimental.createCertificateProviderServerCredentials(
      this.provider,
      this.mutual ? this.provider : null,
      this.mutual,
    );
  }

  /**
   * Follows the files for a node:https server: `apply` gets fresh secure-context options on every
   * change. Returns the function that stops following.
   */
  follow(apply: (options: SecureContextOptions) => void): () => void {
    let identity: Update | undefined;
    let ca: CaUpdate | undefined;
    const update = () => {
      if (!identity || (this.mutual && !ca)) return;
      apply({
        cert: identity.certificate,
        key: identity.privateKey,
        ...(ca ? { ca: ca.caCertificate } : {}),
      });
    };
    const onIdentity = (u: Update | null) => {
      if (u) identity = u;
      update();
    };
    const onCa = (u: CaUpdate | null) => {
      if (u) ca = u;
      update();
    };
    this.provider.addIdentityCertificateListener(onIdentity);
    if (this.mutual) this.provider.addCaCertificateListener(onCa);
    return () => {
      this.provider.removeIdentityCertificateListener(onIdentity);
      this.provider.removeCaCertificateListener(onCa);
    };
  }

  /** Options for https.createServer as the files are now. */
  httpsOptions(): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
    return {
      cert: readFileSync(this.tls.certFile),
      key: readFileSync(this.tls.keyFile),
      ...(this.tls.clientCaFile !== undefined ? { ca: readFileSync(this.tls.clientCaFile) } : {}),
      requestCert: this.mutual,
      rejectUnauthorized: this.mutual,
    };
  }
}

/** Plaintext unless TLS files are given. */
export function grpcServerCredentials(certificates: ServerCertificates | undefined): ServerCredentials {
  return certificates ? certificates.grpcCredentials() : ServerCredentials.createInsecure();
}

export { readPem };
