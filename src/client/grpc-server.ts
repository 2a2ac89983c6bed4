import { ServerCredentials, type Server } from '@grpc/grpc-js';

/** Binds a grpc-js server to host:port (port 0 picks a free one) and returns the bound port. */
export function bindServer(server: Server, address: string): Promise<number> {
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
}

/** Lets in-flight calls finish, then closes; forces the shutdown after `timeoutMs`. */
export function shutdownServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
