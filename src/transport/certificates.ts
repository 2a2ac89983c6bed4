import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/**
 * A certificate authority and leaf certificates for development and tests, made with
 * @peculiar/x509 over Node's WebCrypto (ECDSA P-256, SHA-256). PEM in, PEM out.
 */
x509.cryptoProvider.set(webcrypto as never);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface PemPair {
  /** The certificate, PEM. */
  cert: string;
  /** Its PKCS#8 private key, PEM. */
  key: string;
}

export interface CertificateAuthority extends PemPair {
  /** Issues a server certificate for `names` (DNS names and IP addresses). */
  issueServer(names?: readonly string[], options?: LeafOptions): Promise<PemPair>;
  /** Issues a client certificate whose subject CN is `commonName`. */
  issueClient(commonName: string, options?: LeafOptions): Promise<PemPair>;
}

export interface LeafOptions {
  /** Days the certificate is valid (default 397, the browsers' ceiling). */
  days?: number;
  /** The subject CN (servers default to the first name). */
  commonName?: string;
}

/** The names a local server answers to. */
export const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'] as const;

/** Creates a self-signed CA (10 years unless `days` says otherwise). */
export async function createCertificateAuthority(
  commonName = 'Prism development CA',
  days = 3650,
): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: new x509.Name([{ CN: [commonName] }]),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * DAY_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const issue = (extensions: x509.Extension[], subject: string, options: LeafOptions) =>
    issueLeaf(cert, keys.privateKey, subject, extensions, options.days ?? 397);
  return {
    cert: cert.toString('pem') + '\n',
    key: await pemKey(keys.privateKey),
    issueServer: (names = LOOPBACK_NAMES, options = {}) =>
      issue(
        [
          new x509.SubjectAlternativeNameExtension(
            names.map((n) => (isIpAddress(n) ? { type: 'ip', value: n } : { type: 'dns', value: n })),
          ),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        ],
        options.commonName ?? names[0] ?? 'localhost',
        options,
      ),
    issueClient: (commonName, options = {}) =>
      issue([new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])], commonName, options),
  };
}

async function issueLeaf(
  issuer: x509.X509Certificate,
  issuerKey: CryptoKey,
  commonName: string,
  extensions: x509.Extension[],
  days: number,
): Promise<PemPair> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: new x509.Name([{ CN: [commonName] }]),
    issuer: issuer.subjectName,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * DAY_MS),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: issuerKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer, false),
      ...extensions,
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await pemKey(keys.privateKey) };
}

async function pemKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

/** A positive 16-byte serial number, hex. */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

function isIpAddress(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.includes(':');
}
