/**
 * The local stack's TLS: a development CA and one server certificate for localhost, 127.0.0.1
 * and ::1, made once under <prism home>/dev/tls/ (directory 0700, keys 0600) with
 * src/transport/certificates.ts and reused by every later `dev up`. They are made again only when
 * a file is missing or unreadable, or the server certificate has less than 30 days left.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { devDir } from './state.js';

export interface DevTlsFiles {
  /** The development CA's certificate: what clients trust (PRISM_TLS_CA_FILE). */
  caFile: string;
  /** The server certificate and its key, served by the admin and the proxy. */
  certFile: string;
  keyFile: string;
}

const RENEW_BEFORE_MS = 30 * 86_400_000;

export function devTlsDir(): string {
  const dir = join(devDir(), 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

export function devTlsFiles(dir = devTlsDir()): DevTlsFiles {
  return {
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server-key.pem'),
  };
}

/** The stack's CA and server certificate, created on the first call; `created` says whether now. */
export async function ensureDevCertificates(now = Date.now()): Promise<DevTlsFiles & { created: boolean }> {
  const dir = devTlsDir();
  const files = devTlsFiles(dir);
  if (usable(files, now)) return { ...files, created: false };
  const { createCertificateAuthority, LOOPBACK_NAMES } = await import('../transport/certificates.js');
  const ca = await createCertificateAuthority('Prism local stack CA');
  const server = await ca.issueServer(LOOPBACK_NAMES);
  // Keys first, so a certificate on disk never lacks its key.
  writeFileSync(join(dir, 'ca-key.pem'), ca.key, { mode: 0o600 });
  writeFileSync(files.keyFile, server.key, { mode: 0o600 });
  chmodSync(join(dir, 'ca-key.pem'), 0o600);
  chmodSync(files.keyFile, 0o600);
  writeFileSync(files.certFile, server.cert, { mode: 0o644 });
  writeFileSync(files.caFile, ca.cert, { mode: 0o644 });
  return { ...files, created: true };
}

function usable(files: DevTlsFiles, now: number): boolean {
  if (![files.caFile, files.certFile, files.keyFile].every((f) => existsSync(f))) return false;
  try {
    const ca = new X509Certificate(readFileSync(files.caFile));
    const leaf = new X509Certificate(readFileSync(files.certFile));
    return leaf.verify(ca.publicKey) && Date.parse(leaf.validTo) - now > RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}
