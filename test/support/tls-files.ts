import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, type PemPair } from '../../src/transport/certificates.js';

export interface PemFiles {
  cert: string;
  key: string;
}

/** Certificates from src/transport/certificates.ts written to a fresh directory (keys 0600). */
export interface TlsFiles {
  dir: string;
  /** The CA's certificate file. */
  ca: string;
  /** A server certificate for localhost, 127.0.0.1 and ::1. */
  server: PemFiles;
  /** A client certificate signed by the same CA. */
  client: PemFiles;
  /** A CA nobody trusts, and a client certificate it signed. */
  otherCa: string;
  otherClient: PemFiles;
  /** A server certificate from the other CA (for swapping on disk). */
  otherServer: PemPair;
}

export async function makeTlsFiles(): Promise<TlsFiles> {
  const dir = mkdtempSync(join(tmpdir(), 'prism-tls-'));
  const ca = await createCertificateAuthority('Prism test CA');
  const other = await createCertificateAuthority('Another CA');
  const write = (name: string, pair: PemPair): PemFiles => {
    const cert = join(dir, `${name}.pem`);
    const key = join(dir, `${name}-key.pem`);
    writeFileSync(cert, pair.cert);
    writeFileSync(key, pair.key, { mode: 0o600 });
    return { cert, key };
  };
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.cert);
  const otherCa = join(dir, 'other-ca.pem');
  writeFileSync(otherCa, other.cert);
  return {
    dir,
    ca: caFile,
    server: write('server', await ca.issueServer()),
    client: write('client', await ca.issueClient('prism-client')),
    otherCa,
    otherClient: write('other-client', await other.issueClient('stranger')),
    otherServer: await other.issueServer(),
  };
}

/** Replaces a PEM file the way a certificate manager does: write beside it, then rename. */
export function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.new`, text, { mode: 0o600 });
  renameSync(`${path}.new`, path);
}
