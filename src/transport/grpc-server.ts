import { Server, type ServerCredentials, type ServerInterceptor } from '@grpc/grpc-js';
import { PrismError } from '../errors.js';
import { MAX_MESSAGE_BYTES, SERVER_OPTIONS } from './limits.js';
import { listenAddress } from './listen-address.js';

/**
 * A grpc-js server with the project's keepalive and a message limit (default 4 MiB): a larger
 * request is refused with RESOURCE_EXHAUSTED naming both sizes, a larger response is not sent.
 */
export function createGrpcServer(
  maxMessageBytes = MAX_MESSAGE_BYTES,
  interceptors: ServerInterceptor[] = [],
): Server {
  return new Server({
    ...SERVER_OPTIONS,
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    interceptors,
  });
}

/**
 * Binds a grpc-js server to host:port (port 0 picks a free one) and returns the bound port. A port
 * in use is an E_UNAVAILABLE naming the address.
 */
export function bindServer(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  const target = listenAddress(address);
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(target, credentials, (err, port) =>
      err
        ? reject(
            new PrismError('E_UNAVAILABLE', `cannot listen on ${address}: ${err.message}`, {
              hint: 'pick a free port with --listen, or stop what holds this one',
            }),
          )
        : resolve(port),
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
