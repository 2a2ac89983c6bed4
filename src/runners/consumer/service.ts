import { create } from '@bufbuild/protobuf';
import type {
  sendUnaryData,
  ServerUnaryCall,
  ServerWritableStream,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { AcknowledgeResponseSchema, SubscribeResponseSchema } from '../../gen/prism/data/v1/messaging_pb.js';
import type {
  AcknowledgeRequest,
  SubscribeRequest,
  SubscribeResponse,
} from '../../gen/prism/data/v1/messaging_pb.js';
import { consumeHandler } from './consume.js';
import { toServiceError } from '../../transport/grpc-status.js';
import { PrismError } from '../../errors.js';
import type { RunnerResolver } from '../call-context.js';
import type { ConsumerDelivery, ConsumerRunnerApi } from '../types.js';

const DEFAULT_IN_FLIGHT = 16;

interface OpenSubscription {
  pending: Map<string, ConsumerDelivery>;
  /** Resolves waiters when a delivery is settled, for flow control. */
  settled: Array<() => void>;
}

export interface ConsumerService {
  implementation: UntypedServiceImplementation;
  /** Ends every open subscription stream cleanly (drain). */
  endAll(): Promise<void>;
  /** Subscribe streams currently open. */
  openCount(): number;
}

/**
 * prism.data.v1.Consumer over a resolver. A Subscribe stream delivers at most `max_in_flight`
 * unacknowledged messages; Acknowledge settles one by (subscription_id, delivery_id). When a
 * stream ends, its unacknowledged deliveries are left to the backend to redeliver.
 */
export function consumerService(resolve: RunnerResolver<ConsumerRunnerApi>): ConsumerService {
  const subscriptions = new Map<string, OpenSubscription>();
  const closers = new Set<() => Promise<void>>();

  const subscribe = (call: ServerWritableStream<SubscribeRequest, SubscribeResponse>) => {
    const subscriptionId = randomUUID();
    const state: OpenSubscription = { pending: new Map(), settled: [] };
    const maxInFlight = call.request.maxInFlight || DEFAULT_IN_FLIGHT;
    let closed = false;
    let close: () => Promise<void> = async () => {};
    const finish = async () => {
      if (closed) return;
      closed = true;
      closers.delete(finish);
      subscriptions.delete(subscriptionId);
      state.settled.splice(0).forEach((wake) => wake());
      await close();
      call.end();
    };
    closers.add(finish);
    call.on('cancelled', () => void finish());
    call.on('close', () => void finish());

    resolve(call.metadata, 'Subscribe', { request: call.request, peer: call.getPeer() })
      .then(async ({ runner }) => {
        subscriptions.set(subscriptionId, state);
        const subscription = await runner.subscribe(
          {
            topic: call.request.topic || undefined,
            group: call.request.group || undefined,
            prefetch: maxInFlight,
          },
          async (delivery) => {
            if (closed) return;
            const deliveryId = randomUUID();
            state.pending.set(deliveryId, delivery);
            call.write(
              create(SubscribeResponseSchema, { message: delivery.envelope, deliveryId, subscriptionId }),
            );
            while (!closed && state.pending.size >= maxInFlight)
              await new Promise<void>((wake) => state.settled.push(wake));
          },
        );
        close = () => subscription.close();
        if (closed) await subscription.close();
      })
      .catch((err: unknown) => {
        closed = true;
        closers.delete(finish);
        subscriptions.delete(subscriptionId);
        // grpc-js sends a server stream's status on 'error'; destroy() would drop it and leave
        // the stream open until the client's deadline.
        const status = toServiceError(err);
        call.emit('error', Object.assign(new Error(status.details), status));
      });
  };

  const acknowledge = (
    call: ServerUnaryCall<AcknowledgeRequest, unknown>,
    callback: sendUnaryData<unknown>,
  ) => {
    const req = call.request;
    const state = subscriptions.get(req.subscriptionId);
    const delivery = state?.pending.get(req.deliveryId);
    if (!state || !delivery) {
      callback(
        toServiceError(
          new PrismError(
            'E_NOT_FOUND',
            'no such pending delivery (already settled, or its subscription ended)',
          ),
        ) as never,
        null,
      );
      return;
    }
    state.pending.delete(req.deliveryId);
    state.settled.splice(0).forEach((wake) => wake());
    (req.success ? delivery.ack() : delivery.nack(req.reason || 'consumer reported failure')).then(
      () => callback(null, create(AcknowledgeResponseSchema)),
      (err: unknown) => callback(toServiceError(err) as never, null),
    );
  };

  const consume = consumeHandler(resolve, closers);

  return {
    implementation: { subscribe, acknowledge, consume },
    openCount: () => closers.size,
    endAll: async () => {
      await Promise.all([...closers].map((finish) => finish()));
    },
  };
}
