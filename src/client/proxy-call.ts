import { create, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import type { Client, Metadata, ServiceError } from '@grpc/grpc-js';
import type { PrismError } from '../errors.js';

export { proxyCallError } from './proxy-error.js';

/** A grpc-js generic client, its methods looked up by name. */
export type AnyClient = Client & Record<string, (...args: unknown[]) => unknown>;

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
