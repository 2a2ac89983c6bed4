import { rmSync } from 'node:fs';
import { ServerCredentials, type Server } from '@grpc/grpc-js';
import { PrismError } from '../errors.js';

/**
 * `unix:/absolute/path`: a gRPC address on a Unix domain socket. Launched runners listen on one
 * inside a directory only the proxy's user can enter (src/proxy/launcher/).
 */
export function isUnixAddress(address: string): boolean {
  return address.startsWith('unix:');
}

export function unixSocketPath(address: string): string {
  return address.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
}

/**
 * The socket path of a `unix:/absolute/path` address, ready to bind: an E_USAGE for a relative
 * path, and the socket file a killed process left (which would refuse the bind) removed.
 */
export function unixListenPath(address: string): string {
  const path = unixSocketPath(address);
  if (!path.startsWith('/'))
    throw new PrismError('E_USAGE', `'${address}' is not unix:/absolute/path`, {
      hint: 'write it as unix:/run/prism/runner.sock',
    });
  rmSync(path, { force: true });
  return path;
}

/** Binds a grpc-js server to a Unix socket (plaintext: the socket's directory is the access check). */
export async function bindUnixServer(server: Server, address: string): Promise<void> {
  const path = unixListenPath(address);
  return new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${path}`, ServerCredentials.createInsecure(), (err) =>
      err
        ? reject(new PrismError('E_UNAVAILABLE', `cannot listen on ${address}: ${err.message}`))
        : resolve(),
    ),
  );
}
