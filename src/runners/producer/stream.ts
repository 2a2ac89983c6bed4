/**
 * prism.data.v1.Producer/PublishStream (the contract is in proto/prism/data/v1/messaging.proto):
 * each message goes to the runner on the stream's own PublishLane, so the backend receives them
 * in stream order and in the producer's batches; acknowledgements settled in the same turn of the
 * event loop travel in one response. At most `window` messages are unacknowledged: at the window
 * the stream stops reading, so gRPC flow control holds the client back.
 */
import { create } from '@bufbuild/protobuf';
import type { Metadata, ServerDuplexStream } from '@grpc/grpc-js';
import {
  PublishStreamAckSchema,
  PublishStreamErrorSchema,
  PublishStreamResponseSchema,
  type PublishRequest,
  type PublishStreamAck,
  type PublishStreamMessage,
  type PublishStreamRequest,
  type PublishStreamResponse,
} from '../../gen/prism/data/v1/messaging_pb.js';
import { isPrismError, PrismError } from '../../errors.js';
import { toServiceError } from '../../transport/grpc-status.js';
import type { RunnerResolver, UnaryObserver } from '../call-context.js';
import type { ProducerRunnerApi, PublishInput, PublishLane, PublishResult } from '../types.js';
import type { PublishResponse } from '../../gen/prism/data/v1/messaging_pb.js';

/** Messages one stream may keep unacknowledged (PublishStreamResponse.window). */
export const DEFAULT_PUBLISH_WINDOW = 1024;

/** Open PublishStreams, so a draining server can end them. */
export class PublishStreams {
  private readonly open = new Set<() => Promise<void>>();

  add(drain: () => Promise<void>): () => void {
    this.open.add(drain);
    return () => this.open.delete(drain);
  }

  count(): number {
    return this.open.size;
  }

  /** Stops reading every stream, acknowledges what each received, ends it with UNAVAILABLE. */
  async endAll(): Promise<void> {
    await Promise.all([...this.open].map((drain) => drain()));
  }
}

export interface PublishStreamDeps {
  resolve: RunnerResolver<ProducerRunnerApi>;
  inputOf: (req: PublishRequest, traceparent?: string) => PublishInput;
  responseOf: (result: PublishResult) => PublishResponse;
  newLane: () => PublishLane;
  streams: PublishStreams;
  observe?: UnaryObserver | undefined;
  window?: number;
}

/** Failures that end the stream; any other failure is one message's and is acknowledged. */
function endsStream(err: unknown): boolean {
  return !isPrismError(err) || err.code === 'E_BACKEND_DOWN' || err.code === 'E_UNAVAILABLE';
}

export function publishStreamHandler(deps: PublishStreamDeps) {
  const window = deps.window ?? DEFAULT_PUBLISH_WINDOW;
  return (call: ServerDuplexStream<PublishStreamRequest, PublishStreamResponse>) => {
    const outstanding = new Set<bigint>();
    let acks: PublishStreamAck[] = [];
    let flushing = false;
    let ended = false;
    let halfClosed = false;
    let draining = false;
    let settledWaiter: (() => void) | undefined;
    let done!: (err?: unknown) => void;
    const finished = new Promise<void>((resolve, reject) => {
      done = (err?: unknown) => (err === undefined ? resolve() : reject(err as Error));
    });
    finished.catch(() => undefined);

    const flushAcks = () => {
      flushing = false;
      if (ended || acks.length === 0) return;
      call.write(create(PublishStreamResponseSchema, { acks }));
      acks = [];
    };
    const end = (err?: unknown) => {
      if (ended) return;
      flushAcks();
      ended = true;
      forget();
      if (err === undefined) call.end();
      else {
        const status = toServiceError(err);
        call.emit('error', Object.assign(new Error(status.details), status));
      }
      settledWaiter?.();
      done(err);
    };
    const maybeFinish = () => {
      if (outstanding.size > 0) return;
      settledWaiter?.();
      if (halfClosed) end();
    };
    const settle = (ack: PublishStreamAck) => {
      if (ended) return;
      outstanding.delete(ack.id);
      acks.push(ack);
      if (!flushing) {
        flushing = true;
        setImmediate(flushAcks);
      }
      if (!draining && call.isPaused() && outstanding.size < window) call.resume();
      maybeFinish();
    };
    const forget = deps.streams.add(async () => {
      if (ended) return;
      draining = true;
      call.pause();
      if (outstanding.size > 0) await new Promise<void>((resolve) => (settledWaiter = resolve));
      end(new PrismError('E_UNAVAILABLE', 'the proxy is draining', { hint: 'retry against another proxy' }));
    });
    call.on('cancelled', () => {
      if (ended) return;
      ended = true;
      forget();
      settledWaiter?.();
      done();
    });
    deps.observe?.('PublishStream', finished, call.metadata);

    deps
      .resolve(call.metadata, 'PublishStream')
      .then(({ runner, session }) => {
        if (ended) return;
        call.write(create(PublishStreamResponseSchema, { window }));
        const lane = deps.newLane();
        const traceparent = traceparentOf(call.metadata);
        // Each topic a stream publishes to is authorized once, as PublishBatch authorizes each
        // message's topic; a refused topic refuses its messages alone. While a topic is being
        // authorized, the messages after it wait (counted as outstanding), so the stream keeps its
        // order. The empty topic (the pattern's own) was authorized when the stream opened.
        const allowed = new Set<string>(['']);
        const decisions = new Map<string, Promise<void>>();
        let gate: Promise<void> | undefined;
        const authorize = (topic: string): Promise<void> => {
          let decided = decisions.get(topic);
          if (!decided) {
            decided = deps
              .resolve(call.metadata, 'PublishStream', {
                request: { messages: [{ topic }] },
                peer: call.getPeer(),
              })
              .then(() => void allowed.add(topic));
            decisions.set(topic, decided);
          }
          return decided;
        };
        const accept = (item: PublishStreamMessage) => {
          const { id, message } = item;
          if (outstanding.has(id)) {
            end(
              new PrismError(
                'E_INVALID_ARGUMENT',
                `message id ${id} is already unacknowledged on this stream`,
              ),
            );
            return;
          }
          outstanding.add(id);
          if (!message) {
            settle(refused(id, new PrismError('E_INVALID_ARGUMENT', `message ${id} has no message`)));
            return;
          }
          const topic = message.topic;
          if (!gate && allowed.has(topic)) {
            publish(id, message);
            return;
          }
          const mine = (gate ?? Promise.resolve())
            .then(() => authorize(topic))
            .then(
              () => {
                if (!ended) publish(id, message);
              },
              (err: unknown) => settle(refused(id, err)),
            );
          gate = mine;
          void mine.then(() => {
            if (gate === mine) gate = undefined;
          });
        };
        const publish = (id: bigint, message: NonNullable<PublishStreamMessage['message']>) => {
          runner.publish(deps.inputOf(message, traceparent), session, lane).then(
            (result) => settle(create(PublishStreamAckSchema, { id, result: deps.responseOf(result) })),
            (err: unknown) => (endsStream(err) ? end(err) : settle(refused(id, err))),
          );
        };
        call.on('data', (req: PublishStreamRequest) => {
          for (const message of req.messages) {
            if (ended) return;
            accept(message);
          }
          if (!ended && outstanding.size >= window) call.pause();
        });
        call.on('end', () => {
          halfClosed = true;
          maybeFinish();
        });
      })
      .catch((err: unknown) => end(err));
  };
}

function refused(id: bigint, err: unknown): PublishStreamAck {
  const status = toServiceError(err);
  const prism = isPrismError(err) ? err : undefined;
  return create(PublishStreamAckSchema, {
    id,
    error: create(PublishStreamErrorSchema, {
      status: status.code ?? 13,
      code: prism?.code ?? 'E_INTERNAL',
      message: status.details ?? '',
      hint: prism?.hint ?? '',
    }),
  });
}

function traceparentOf(metadata: Metadata): string | undefined {
  return metadata.get('traceparent')[0]?.toString();
}
