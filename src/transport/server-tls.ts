import { experimental, ServerCredentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { PrismError } from '../errors.js';

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

/**
 * grpc-js's FileWatcherCertificateProvider reads the PEM files every `refreshMs`, and grpc-js swaps
 * the server's secure context when they change: new connections get the new certificate, open
 * ones keep theirs. This wrapper passes on only pairs that load (a certificate written before its
 * key, or a half-written file, would otherwise make the server drop new connections until the
 * next read): the last good pair stays in use.
 */
class LastGoodCertificates implements experimental.CertificateProvider {
  private readonly files: experimental.FileWatcherCertificateProvider;
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private identity?: Update;
  private ca?: CaUpdate;
  private readonly onIdentity = (update: Update | null) => {
    if (!update || !loads({ cert: update.certificate, key: update.privateKey })) return;
    if (this.identity && sameIdentity(this.identity, update)) return;
    this.identity = update;
    for (const listener of this.identityListeners) listener(update);
  };
  private readonly onCa = (update: CaUpdate | null) => {
    if (!update || !loads({ ca: update.caCertificate })) return;
    if (this.ca?.caCertificate.equals(update.caCertificate)) return;
    this.ca = update;
    for (const listener of this.caListeners) listener(update);
  };

  constructor(
    readonly tls: ServerTls,
    initial: { identity: Update; ca?: CaUpdate },
  ) {
    this.identity = initial.identity;
    this.ca = initial.ca;
    this.files = new experimental.FileWatcherCertificateProvider({
      certificateFile: tls.certFile,
      privateKeyFile: tls.keyFile,
      ...(tls.clientCaFile !== undefined ? { caCertificateFile: tls.clientCaFile } : {}),
      refreshIntervalMs: tls.refreshMs ?? 5000,
    });
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    this.watch();
    if (this.identity) process.nextTick(listener, this.identity);
  }
  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
    this.unwatch();
  }
  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    this.watch();
    if (this.ca) process.nextTick(listener, this.ca);
  }
  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
    this.unwatch();
  }

  private watching = false;
  private watch(): void {
    if (this.watching) return;
    this.watching = true;
    this.files.addIdentityCertificateListener(this.onIdentity);
    if (this.tls.clientCaFile !== undefined) this.files.addCaCertificateListener(this.onCa);
  }
  /** With no listener left the file watcher's timer stops, so a stopped server keeps no handle. */
  private unwatch(): void {
    if (!this.watching || this.identityListeners.size + this.caListeners.size > 0) return;
    this.watching = false;
    this.files.removeIdentityCertificateListener(this.onIdentity);
    this.files.removeCaCertificateListener(this.onCa);
  }
}

function loads(options: SecureContextOptions): boolean {
  try {
    createSecureContext(options);
    return true;
  } catch {
    return false;
  }
}

function sameIdentity(a: Update, b: Update): boolean {
  return a.certificate.equals(b.certificate) && a.privateKey.equals(b.privateKey);
}

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
    this.provider = new LastGoodCertificates(tls, {
      identity: { certificate: cert, privateKey: key },
      ...(ca ? { ca: { caCertificate: ca } } : {}),
    });
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

export function readPem(file: string, flag: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new PrismError('E_INPUT_UNREADABLE', `cannot read ${flag} file ${file}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN ')) {
    throw new PrismError('E_USAGE', `${file} (${flag}) is not a PEM file`, {
      hint: 'PEM files start with a -----BEGIN ...----- line',
    });
  }
  return pem;
}
