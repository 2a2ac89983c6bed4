/**
 * An OpenBao server of a test's own, for what the shared test Vault must not be put through: a
 * seal, a start at a chosen moment, or a TLS listener. It runs the same binary as the shared one
 * (PRISM_TEST_BAO_BIN, from `scripts/test-services.sh`), in dev mode (in memory, unsealed, a root
 * token of its own) on loopback ports, with a private HOME so that nothing is written to the
 * user's token helper. A TLS listener comes from a server config file, as in production.
 *
 *   const bao = await startBaoServer({ tls: { key, cert } });   // bao.tlsAddress: https://127.0.0.1:<port>
 *   await bao.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface BaoServer {
  /** The dev listener: http://127.0.0.1:<port>. */
  address: string;
  /** The TLS listener from the config file, when asked for: https://127.0.0.1:<port>. */
  tlsAddress?: string;
  rootToken: string;
  /** The dev server's single unseal key (as it prints it). */
  unsealKey: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s); idempotent. */
  stop(): Promise<void>;
}

export interface BaoServerOptions {
  /** Port of the dev listener; a free one unless given. */
  port?: number;
  /** A second listener with this key and certificate (PEM), on its own free port. */
  tls?: { key: Buffer | string; cert: Buffer | string };
  /** Milliseconds to wait until sys/health answers. Default 30 s. */
  readyTimeoutMs?: number;
}

/** The bao binary that `scripts/test-services.sh` caches. */
export function baoBinary(): string {
  const bin = process.env.PRISM_TEST_BAO_BIN?.trim();
  if (!bin || !existsSync(bin)) {
    throw new Error(
      `no OpenBao binary at PRISM_TEST_BAO_BIN (${bin ?? 'unset'}); run 'bash scripts/test-services.sh up vault' and eval its env`,
    );
  }
  return bin;
}

export async function startBaoServer(options: BaoServerOptions = {}): Promise<BaoServer> {
  const bin = baoBinary();
  const dir = mkdtempSync(join(tmpdir(), 'prism-bao-'));
  const port = options.port ?? (await freePort());
  const rootToken = `prism-own-${randomBytes(12).toString('hex')}`;
  const args = [
    'server',
    '-dev',
    '-dev-no-store-token',
    `-dev-root-token-id=${rootToken}`,
    `-dev-listen-address=127.0.0.1:${port}`,
    '-log-level=warn',
  ];
  let tlsAddress: string | undefined;
  if (options.tls) {
    const tlsPort = await freePort();
    writeFileSync(join(dir, 'server.key'), options.tls.key, { mode: 0o600 });
    writeFileSync(join(dir, 'server.pem'), options.tls.cert);
    writeFileSync(
      join(dir, 'server.hcl'),
      [
        'listener "tcp" {',
        `  address       = "127.0.0.1:${tlsPort}"`,
        `  tls_cert_file = "${join(dir, 'server.pem')}"`,
        `  tls_key_file  = "${join(dir, 'server.key')}"`,
        '}',
        '',
      ].join('\n'),
    );
    args.push(`-config=${join(dir, 'server.hcl')}`);
    tlsAddress = `https://127.0.0.1:${tlsPort}`;
  }
  const child = spawn(bin, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `http://127.0.0.1:${port}`;
  const stop = () => stopChild(child, exited);

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`bao server exited with code ${child.exitCode}: ${output.slice(-2000)}`);
    }
    const ready = await fetch(`${address}/v1/sys/health`, { signal: AbortSignal.timeout(1000) }).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ready && /Unseal Key: (\S+)/.test(output)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`bao server on ${address} was not ready in time: ${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const unsealKey = /Unseal Key: (\S+)/.exec(output)![1]!;
  return { address, ...(tlsAddress !== undefined ? { tlsAddress } : {}), rootToken, unsealKey, stop };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
