/**
 * Helpers for the PublishStream / Consume e2e tests: a namespace file per backend with a batching
 * producer and a consumer, and a Consume reader that buffers deliveries from the start.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type {
  ConsumeDelivery,
  ConsumeRequest,
  ConsumeResponse,
} from '../../src/gen/prism/data/v1/messaging_pb.js';

export function streamNamespaceYaml(
  namespace: string,
  backend: string,
  producerSettings: Record<string, string | number> = {},
  credentials?: string,
): string {
  const slot = credentials
    ? `{ backend: ${backend}, credentials: "${credentials}" }`
    : `{ backend: ${backend} }`;
  const settings = { topic: 'events', batch_size: 32, batch_interval: '5ms', ...producerSettings };
  return [
    `namespace: ${namespace}`,
    'team: platform',
    ...(backend === 'redis' ? ['needs: { retention: 1h }'] : []),
    'patterns:',
    '  - name: events',
    '    type: producer',
    `    slots: { sink: ${slot} }`,
    `    settings: { ${Object.entries(settings)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')} }`,
    '  - name: worker',
    '    type: consumer',
    `    slots: { source: ${slot} }`,
    '    settings: { topic: events, consumer_group: workers, max_retries: 5, ack_timeout: 30s }',
    '',
  ].join('\n');
}

/** Buffers a Consume stream's deliveries from the moment it opens, one item per delivery. */
export function consumeReader(call: ClientDuplexStream<ConsumeRequest, ConsumeResponse>) {
  const received: ConsumeDelivery[] = [];
  let failure: Error | undefined;
  call.on('data', (r: ConsumeResponse) => received.push(...r.deliveries));
  call.on('error', (err: Error) => (failure = err));
  return {
    received,
    get failure() {
      return failure;
    },
  };
}

export async function waitFor(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!ok()) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
