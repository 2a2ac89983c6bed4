/**
 * A server certificate from Vault's PKI secrets engine (`--tls-from-vault <mount>/issue/<role>`):
 * issued at start, written as PEM files the server follows (server-tls.ts reads them again every
 * `refreshMs` and swaps them in for new connections), and issued again at two thirds of its
 * lifetime. A failed renewal is retried every few seconds while the current certificate is valid;
 * open connections and the last good certificate are never dropped.
 */
import { isIP } from 'node:net';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { VaultCertificate, VaultClient } from '../auth/vault-client.js';
import { PrismError } from '../errors.js';
import type { ServerTls } from './server-tls.js';

export interface VaultTlsOptions {
  client: VaultClient;
  /** The Vault token, read for every issue (VAULT_TOKEN). */
  token: () => string;
  /** `<mount>/issue/<role>`. */
  path: string;
  /** DNS names and IP addresses the certificate carries; the first is the common name. */
  names: readonly string[];
  /** Where the PEM files go (created 0700). */
  dir: string;
  ttl?: string | undefined;
  logger: Pick<Logger, 'info' | 'error'>;
  /** How often the server reads the files (default 1 s). */
  refreshMs?: number;
}

export class VaultIssuedTls {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private current?: VaultCertificate;

  constructor(private readonly options: VaultTlsOptions) {
    if (!/^[\w.-]+(\/[\w.-]+)*\/issue\/[\w.-]+$/.test(options.path)) {
      throw new PrismError('E_USAGE', `--tls-from-vault '${options.path}' is not <mount>/issue/<role>`, {
        hint: 'e.g. --tls-from-vault pki/issue/prism-proxy',
      });
    }
  }

  get certFile(): string {
    return join(this.options.dir, 'cert.pem');
  }
  get keyFile(): string {
    return join(this.options.dir, 'key.pem');
  }
  get serialNumber(): string | undefined {
    return this.current?.serialNumber;
  }

  /** Issues the first certificate (a failure here stops the server from starting). */
  async start(): Promise<ServerTls> {
    mkdirSync(this.options.dir, { recursive: true, mode: 0o700 });
    await this.issue();
    return { certFile: this.certFile, keyFile: this.keyFile, refreshMs: this.options.refreshMs ?? 1000 };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    rmSync(this.options.dir, { recursive: true, force: true });
  }

  private async issue(): Promise<void> {
    const { names } = this.options;
    const ips = names.filter((n) => isIP(n) !== 0);
    const dns = names.filter((n) => isIP(n) === 0);
    const requestedAt = Date.now();
    const cert = await this.options.client.issueCertificate(this.options.token(), this.options.path, {
      common_name: names[0] ?? 'localhost',
      ...(dns.length > 1 ? { alt_names: dns.slice(1).join(',') } : {}),
      ...(ips.length > 0 ? { ip_sans: ips.join(',') } : {}),
      ...(this.options.ttl !== undefined ? { ttl: this.options.ttl } : {}),
    });
    // Key and certificate each replaced by a rename; the server keeps the last pair that loads.
    const write = (file: string, text: string) => {
      writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    };
    write(this.keyFile, cert.privateKey);
    write(this.certFile, cert.chain);
    this.current = cert;
    const lifetimeMs = Math.max(1000, cert.expiration * 1000 - requestedAt);
    this.options.logger.info(
      {
        path: this.options.path,
        serial: cert.serialNumber,
        expires: new Date(cert.expiration * 1000).toISOString(),
      },
      'TLS certificate issued by Vault',
    );
    this.schedule(Math.round((lifetimeMs * 2) / 3));
  }

  private schedule(inMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.issue().catch((err: unknown) => {
        const left = (this.current?.expiration ?? 0) * 1000 - Date.now();
        this.options.logger.error(
          { err: (err as Error).message, path: this.options.path, expiresInMs: left },
          'renewing the TLS certificate from Vault failed; retrying',
        );
        this.schedule(Math.max(1000, Math.min(5000, left / 4)));
      });
    }, inMs);
    this.timer.unref();
  }
}
