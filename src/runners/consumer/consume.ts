/**
 * prism.data.v1.Consumer/Consume (the contract is in proto/prism/data/v1/messaging.proto): one
 * member of a consumer group with acknowledgements in band. Credit: at most `max_in_flight`
 * deliveries are unacknowledged, and a delivery waits while the client does not read (the
 * write buffer is full), so a slow consumer holds the backend's delivery back instead of being
 * flooded. One ConsumeAck settles many deliveries at once; their settlements go to the backend
 * together.
 */
import { create } from '@bufbuild/protobuf';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import {
  ConsumeDeliverySchema,
  ConsumeResponseSchema,
  type ConsumeDelivery,
  type ConsumeAck,
  type ConsumeRequest,
  type ConsumeResponse,
  type SubscribeRequest,
} from '../../gen/prism/data/v1/messaging_pb.js';
import { PrismError } from '../../errors.js';
import { toServiceError } from '../../transport/grpc-status.js';
import type { RunnerResolver } from '../call-context.js';
import type { ConsumerDelivery, ConsumerRunnerApi, ConsumerSubscription } from '../types.js';
import { stderrLogger } from '../lifecycle.js';

const DEFAULT_IN_FLIGHT = 16;

/** `closers` holds every open stream's finish, so a draining server ends them (with OK). */
export function consumeHandler(
  resolve: RunnerResolver<ConsumerRunnerApi>,
  closers: Set<() => Promise<void>>,
) {
  return (call: ServerDuplexStream<ConsumeRequest, ConsumeResponse>) => {
    const pending = new Map<string, ConsumerDelivery>();
    const wakers: Array<() => void> = [];
    const wake = () => wakers.splice(0).forEach((w) => w());
    let maxInFlight = DEFAULT_IN_FLIGHT;
    let next = 0;
    let opened = false;
    let closed = false;
    let subscription: ConsumerSubscription | undefined;

    const finish = async (err?: unknown) => {
      if (closed) return;
      closed = true;
      closers.delete(finish);
      wake();
      await subscription?.close();
      if (err === undefined) call.end();
      else {
        const status = toServiceError(err);
        call.emit('error', Object.assign(new Error(status.details), status));
      }
    };
    closers.add(finish);
    call.on('cancelled', () => void finish());
    call.on('end', () => void finish());
    call.on('drain', wake);

    // Deliveries of one turn of the event loop travel in one response.
    let outgoing: ConsumeDelivery[] = [];
    const flush = () => {
      const deliveries = outgoing;
      outgoing = [];
      if (!closed && deliveries.length > 0) call.write(create(ConsumeResponseSchema, { deliveries }));
    };
    const send = (delivery: ConsumeDelivery) => {
      outgoing.push(delivery);
      if (outgoing.length === 1) setImmediate(flush);
    };

    const open = (request: SubscribeRequest) => {
      maxInFlight = request.maxInFlight || DEFAULT_IN_FLIGHT;
      resolve(call.metadata, 'Consume', { request, peer: call.getPeer() })
        .then(async ({ runner }) => {
          if (closed) return;
          const opened = await runner.subscribe(
            { topic: request.topic || undefined, group: request.group || undefined, prefetch: maxInFlight },
            async (delivery) => {
              if (closed) return;
              const deliveryId = String(++next);
              pending.set(deliveryId, delivery);
              send(create(ConsumeDeliverySchema, { message: delivery.envelope, deliveryId }));
              // Credit: hold the backend's next delivery while the client is behind.
              while (!closed && (pending.size >= maxInFlight || call.writableNeedDrain))
                await new Promise<void>((w) => wakers.push(w));
            },
          );
          subscription = opened;
          if (closed) await opened.close();
        })
        .catch((err: unknown) => void finish(err));
    };

    const settle = (ack: ConsumeAck) => {
      const deliveries: ConsumerDelivery[] = [];
      for (const id of ack.deliveryIds) {
        const delivery = pending.get(id);
        if (!delivery) {
          void finish(new PrismError('E_NOT_FOUND', `delivery ${id} is not pending on this stream`));
          return;
        }
        pending.delete(id);
        deliveries.push(delivery);
      }
      wake();
      const reason = ack.reason || 'consumer reported failure';
      // Settled together: the backend's settlements of one ack are in flight at once.
      for (const delivery of deliveries) {
        (ack.success ? delivery.ack() : delivery.nack(reason)).catch((err: unknown) =>
          stderrLogger.warn(
            { err: String(err) },
            'a settlement did not reach the backend; the message will be redelivered',
          ),
        );
      }
    };

    call.on('data', (req: ConsumeRequest) => {
      if (closed) return;
      if (req.kind.case === 'open') {
        if (opened) {
          void finish(new PrismError('E_INVALID_ARGUMENT', 'Consume: `open` was sent twice'));
          return;
        }
        opened = true;
        open(req.kind.value);
      } else if (req.kind.case === 'ack' && opened) {
        settle(req.kind.value);
      } else {
        void finish(new PrismError('E_INVALID_ARGUMENT', 'Consume: the first request must be `open`'));
      }
    });
  };
}
