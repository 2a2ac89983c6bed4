import type { ServiceError } from '@grpc/grpc-js';
import type { DataClient } from '../../src/client/data-client.js';

/**
 * What a Subscribe stream does first within `withinMs`: 'a message', the PrismError its status
 * carries, or 'still open'. A contract test of Subscribe's statuses expects the error well before
 * any deadline.
 */
export function firstSubscribeEvent(client: DataClient, withinMs: number): Promise<unknown> {
  const stream = client.subscribe({});
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stream.cancel();
      resolve('still open');
    }, withinMs);
    stream.once('data', () => {
      clearTimeout(timer);
      stream.cancel();
      resolve('a message');
    });
    stream.once('error', (err: ServiceError) => {
      clearTimeout(timer);
      resolve(client.streamError(err));
    });
  });
}
