import { experimental } from '@grpc/grpc-js';
import { createSecureContext, rootCertificates, type SecureContextOptions } from 'node:tls';

type Update = experimental.IdentityCertificateUpdate;
type CaUpdate = experimental.CaCertificateUpdate;

/** PEM files one side of a TLS connection follows: its own identity, the CA it checks the peer by. */
export interface CertificateFiles {
  certFile?: string | undefined;
  keyFile?: string | undefined;
  caFile?: string | undefined;
  /** How often the files are read again (default 5 s). */
  refreshMs?: number | undefined;
}

/**
 * grpc-js's FileWatcherCertificateProvider reads the PEM files every `refreshMs`, and grpc-js swaps
 * the secure context when they change: new connections get the new certificates, open ones keep
 * theirs. This wrapper passes on only what loads (a certificate written before its key, or a
 * half-written file, would otherwise make new connections fail until the next read): the last
 * good pair stays in use. Without a CA file the CA side is the system's roots, fixed.
 */
export class LastGoodCertificates implements experimental.CertificateProvider {
  private readonly files: experimental.FileWatcherCertificateProvider;
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private identity?: Update | undefined;
  private ca?: CaUpdate | undefined;
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
    private readonly paths: CertificateFiles,
    initial: { identity?: Update | undefined; ca?: CaUpdate | undefined },
  ) {
    this.identity = initial.identity;
    this.ca =
      initial.ca ??
      (paths.caFile === undefined ? { caCertificate: Buffer.from(rootCertificates.join('\n')) } : undefined);
    this.files = new experimental.FileWatcherCertificateProvider({
      ...(paths.certFile !== undefined && paths.keyFile !== undefined
        ? { certificateFile: paths.certFile, privateKeyFile: paths.keyFile }
        : {}),
      ...(paths.caFile !== undefined ? { caCertificateFile: paths.caFile } : {}),
      refreshIntervalMs: paths.refreshMs ?? 5000,
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
    if (this.paths.certFile !== undefined) this.files.addIdentityCertificateListener(this.onIdentity);
    if (this.paths.caFile !== undefined) this.files.addCaCertificateListener(this.onCa);
  }
  /** With no listener left the file watcher's timer stops, so a closed server or channel keeps no handle. */
  private unwatch(): void {
    if (!this.watching || this.identityListeners.size + this.caListeners.size > 0) return;
    this.watching = false;
    this.files.removeIdentityCertificateListener(this.onIdentity);
    this.files.removeCaCertificateListener(this.onCa);
  }
}

export function loads(options: SecureContextOptions): boolean {
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
