import { Flags } from '@oclif/core';
import type { Logger } from 'pino';
import { PrismError } from '../errors.js';
import type { ClientTls } from '../transport/dial.js';
import { isLoopbackHost, splitHostPort } from '../transport/listen-address.js';
import type { ServerTls } from '../transport/server-tls.js';

/** TLS flags of every command that dials the proxy or the admin. */
export const clientTlsFlags = {
  tls: Flags.boolean({
    description:
      'Dial with TLS even though the endpoint is written host:port (grpcs://host:port always does)',
    helpGroup: 'TLS',
  }),
  'ca-file': Flags.string({
    description:
      "PEM CA certificate(s) the server's certificate must chain to (default: the system's roots); implies TLS",
    env: 'PRISM_TLS_CA_FILE',
    helpGroup: 'TLS',
  }),
  'tls-server-name': Flags.string({
    description:
      "Name the server's certificate must carry, when it differs from the endpoint's host; implies TLS",
    helpGroup: 'TLS',
  }),
  'tls-client-cert': Flags.string({
    description: 'PEM client certificate for servers that require one (mTLS); implies TLS',
    env: 'PRISM_TLS_CLIENT_CERT',
    dependsOn: ['tls-client-key'],
    helpGroup: 'TLS',
  }),
  'tls-client-key': Flags.string({
    description: 'PEM private key of --tls-client-cert',
    env: 'PRISM_TLS_CLIENT_KEY',
    dependsOn: ['tls-client-cert'],
    helpGroup: 'TLS',
  }),
  insecure: Flags.boolean({
    description:
      'Send the bearer token even over plaintext to an address off this machine (refused otherwise: anyone on the path could read it)',
    helpGroup: 'TLS',
  }),
};

export interface ClientTlsFlagValues {
  tls?: boolean | undefined;
  'ca-file'?: string | undefined;
  'tls-server-name'?: string | undefined;
  'tls-client-cert'?: string | undefined;
  'tls-client-key'?: string | undefined;
}

export function clientTlsFromFlags(flags: ClientTlsFlagValues): ClientTls {
  return {
    tls: flags.tls,
    caFile: flags['ca-file'],
    serverName: flags['tls-server-name'],
    certFile: flags['tls-client-cert'],
    keyFile: flags['tls-client-key'],
  };
}

/** TLS flags of every server (proxy, admin, runner): its gRPC port and its HTTP status port. */
export const serverTlsFlags = {
  'tls-cert': Flags.string({
    description:
      'PEM certificate (chain) to serve gRPC and HTTP over TLS; read again when it changes, without dropping open connections',
    dependsOn: ['tls-key'],
    helpGroup: 'TLS',
  }),
  'tls-key': Flags.string({
    description: 'PEM private key of --tls-cert (keep it 0600)',
    dependsOn: ['tls-cert'],
    helpGroup: 'TLS',
  }),
  'tls-client-ca': Flags.string({
    description: 'PEM CA certificate(s): clients must present a certificate it signed (mTLS)',
    dependsOn: ['tls-cert'],
    helpGroup: 'TLS',
  }),
  'no-tls': Flags.boolean({
    description:
      'Serve plaintext on a non-loopback address on purpose (e.g. behind a TLS-terminating mesh); refused otherwise',
    exclusive: ['tls-cert'],
    helpGroup: 'TLS',
  }),
};

/** `admin serve` and `proxy serve`: a server certificate from Vault's PKI secrets engine. */
export const vaultTlsFlags = {
  'tls-from-vault': Flags.string({
    description:
      "Serve TLS with a certificate issued by Vault's PKI engine at <mount>/issue/<role> (VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT), issued again at 2/3 of its lifetime",
    exclusive: ['tls-cert', 'no-tls'],
    helpGroup: 'TLS',
  }),
  'tls-vault-name': Flags.string({
    description:
      'Name (DNS or IP) the Vault-issued certificate carries, repeatable; the first is its common name (default: localhost and the --listen IP)',
    multiple: true,
    dependsOn: ['tls-from-vault'],
    helpGroup: 'TLS',
  }),
  'tls-vault-ttl': Flags.string({
    description: "Lifetime to ask Vault for, e.g. 72h (default: the role's ttl)",
    dependsOn: ['tls-from-vault'],
    helpGroup: 'TLS',
  }),
};

/**
 * The server's TLS from --tls-cert/--tls-key, or issued by Vault with --tls-from-vault (files in
 * `dir`, removed by `stop`); undefined for plaintext.
 */
export async function serverTlsWithVault(
  flags: Parameters<typeof serverTlsFromFlags>[0] & {
    'tls-from-vault'?: string | undefined;
    'tls-vault-name'?: string[] | undefined;
    'tls-vault-ttl'?: string | undefined;
  },
  listen: string,
  dir: string,
  logger: Logger,
): Promise<{ tls: ServerTls | undefined; stop: () => void }> {
  const path = flags['tls-from-vault'];
  if (path === undefined) return { tls: serverTlsFromFlags(flags), stop: () => undefined };
  const address = process.env.VAULT_ADDR;
  const token = process.env.VAULT_TOKEN;
  if (!address || !token) {
    throw new PrismError('E_USAGE', '--tls-from-vault needs VAULT_ADDR and VAULT_TOKEN', {
      hint: "set VAULT_ADDR to Vault's address and VAULT_TOKEN to a token allowed to write <mount>/issue/<role>",
    });
  }
  const [{ VaultClient }, { VaultIssuedTls }] = await Promise.all([
    import('../auth/vault-client.js'),
    import('../transport/vault-tls.js'),
  ]);
  const [host] = splitHostPort(listen);
  const names = flags['tls-vault-name'] ?? [
    'localhost',
    ...(host !== 'localhost' && isLoopbackHost(host) ? [host] : []),
  ];
  const issued = new VaultIssuedTls({
    client: new VaultClient({
      address,
      ...(process.env.VAULT_CACERT ? { caFile: process.env.VAULT_CACERT } : {}),
    }),
    token: () => token,
    path,
    names,
    dir,
    ttl: flags['tls-vault-ttl'],
    logger,
  });
  const tls = await issued.start();
  return { tls, stop: () => issued.stop() };
}

/**
 * A server serves plaintext off loopback only when told so: bearer tokens and data would cross
 * the network in clear text. Checked before anything binds; `listens` are [flag, address].
 */
export function checkPlaintextListen(
  flags: {
    'tls-cert'?: string | undefined;
    'tls-from-vault'?: string | undefined;
    'no-tls'?: boolean | undefined;
  },
  listens: ReadonlyArray<readonly [flag: string, address: string | undefined]>,
  logger: Pick<Logger, 'warn'>,
): void {
  if (flags['tls-cert'] !== undefined || flags['tls-from-vault'] !== undefined) return;
  for (const [flag, address] of listens) {
    if (address === undefined) continue;
    const [host] = splitHostPort(address);
    if (isLoopbackHost(host)) continue;
    if (flags['no-tls']) {
      logger.warn(
        { listen: address, flag },
        'serving PLAINTEXT on a non-loopback address (--no-tls): tokens and data cross the network in clear text',
      );
      continue;
    }
    throw new PrismError(
      'E_USAGE',
      `refusing to serve plaintext on ${address} (${flag}), which is not a loopback address: bearer tokens and data would cross the network in clear text`,
      {
        hint: 'serve TLS with --tls-cert and --tls-key (docs/tls.md), or pass --no-tls to serve plaintext on purpose (behind a TLS-terminating proxy or mesh)',
      },
    );
  }
}

export function serverTlsFromFlags(flags: {
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  'tls-client-ca'?: string | undefined;
}): ServerTls | undefined {
  if (flags['tls-cert'] === undefined || flags['tls-key'] === undefined) return undefined;
  return {
    certFile: flags['tls-cert'],
    keyFile: flags['tls-key'],
    ...(flags['tls-client-ca'] !== undefined ? { clientCaFile: flags['tls-client-ca'] } : {}),
  };
}
