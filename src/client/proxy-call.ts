import { create, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import type { Client, Metadata, ServiceError } from '@grpc/grpc-js';
import { PrismError } from '../errors.js';
import { fromServiceError } from '../transport/grpc-status.js';
import { tlsFailure, type DialMode } from '../transport/tls-errors.js';

/** A grpc-js generic client, its methods looked up by name. */
export type AnyClient = Client & Record<string, (...args: unknown[]) => unknown>;

/**
 * The PrismError a failed call to the proxy (or a standalone runner) raises: a TLS failure named
 * with its fix, a refused connection as "cannot reach the Prism proxy", else the server's status.
 */
export function proxyCallError(err: ServiceError, endpoint: string, mode: DialMode): PrismError {
  const tls = tlsFailure(err, endpoint, mode);
  if (tls) return tls;
  const prism = fromServiceError(err, endpoint);
  if (prism.code === 'E_UNREACHABLE' && !err.metadata?.get('x-prism-error-code').length) {
    return new PrismError('E_UNREACHABLE', `cannot reach the Prism proxy at ${endpoint}`, {
      hint: 'start one with `prismctl proxy serve` or `prismctl dev up`, or point --proxy / PRISM_PROXY_ENDPOINT at a running one',
    });
  }
  return prism;
}

/** One unary call with a deadline; rejects with `toError` of the call's error. */
export function unaryCall<D extends DescMessage, Res>(
  client: AnyClient,
  method: string,
  schema: D,
  init: MessageInitShape<D>,
  call: { metadata: Metadata; timeoutMs: number | undefined; toError: (err: ServiceError) => PrismError },
): Promise<Res> {
  const deadline = new Date(Date.now() + (call.timeoutMs ?? 15_000));
  return new Promise<Res>((resolve, reject) => {
    client[method]!(
      create(schema, init),
      call.metadata,
      { deadline },
      (err: ServiceError | null, res: Res) => (err ? reject(call.toError(err)) : resolve(res)),
    );
  });
}
