/**
 * The client side of Producer/PublishStream: ids are numbered by the writer, messages published
 * in one turn of the event loop travel in one request, acknowledgements settle the promise
 * `publish` returned, and `ready()` waits while the proxy's window is full or gRPC flow control
 * holds writes back, so a fast producer never buffers without bound.
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import {
  PublishRequestSchema,
  PublishStreamMessageSchema,
  type PublishStreamMessage,
  PublishStreamRequestSchema,
  type PublishResponse,
  type PublishStreamRequest,
  type PublishStreamResponse,
} from '../gen/prism/data/v1/messaging_pb.js';
import { PrismError, type PrismErrorCode } from '../errors.js';

/** Messages one request carries at most; more wait for the next. */
const MAX_PER_REQUEST = 256;

interface Waiting {
  resolve: (res: PublishResponse) => void;
  reject: (err: PrismError) => void;
}

export class PublishStreamWriter {
  private nextId = 1n;
  private readonly waiting = new Map<bigint, Waiting>();
  private window: number | undefined;
  private failure: PrismError | undefined;
  /** The status the stream ended with, when not OK. */
  private error: PrismError | undefined;
  private wakers: Array<() => void> = [];
  private outgoing: PublishStreamMessage[] = [];
  private scheduled = false;
  private readonly closed: Promise<void>;

  constructor(
    private readonly call: ClientDuplexStream<PublishStreamRequest, PublishStreamResponse>,
    toError: (err: ServiceError) => PrismError,
  ) {
    call.on('data', (res: PublishStreamResponse) => this.receive(res));
    call.on('drain', () => this.wake());
    let failed: ServiceError | undefined;
    call.on('error', (err: ServiceError) => (failed = err));
    this.closed = new Promise<void>((resolve) => {
      call.on('status', () => {
        if (failed) this.error = toError(failed);
        this.fail(this.error ?? new PrismError('E_UNAVAILABLE', 'the publish stream has ended'));
        resolve();
      });
    });
  }

  /** The proxy's window (undefined until its first response). */
  get windowSize(): number | undefined {
    return this.window;
  }

  /** Messages sent and not yet acknowledged. */
  get unacknowledged(): number {
    return this.waiting.size;
  }

  /** Resolves when another message may be sent; rejects once the stream failed. */
  async ready(): Promise<void> {
    while (
      !this.failure &&
      (this.window === undefined || this.waiting.size >= this.window || this.call.writableNeedDrain)
    )
      await new Promise<void>((wake) => this.wakers.push(wake));
    if (this.failure) throw this.failure;
  }

  /**
   * Sends one message; the promise settles with its acknowledgement (a refused message rejects
   * with the refusal's PrismError). Call after `ready()` to respect the window.
   */
  publish(init: MessageInitShape<typeof PublishRequestSchema>): Promise<PublishResponse> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const acked = new Promise<PublishResponse>((resolve, reject) =>
      this.waiting.set(id, { resolve, reject }),
    );
    this.outgoing.push(
      create(PublishStreamMessageSchema, { id, message: create(PublishRequestSchema, init) }),
    );
    if (this.outgoing.length >= MAX_PER_REQUEST) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return acked;
  }

  /** Half-closes; resolves once the proxy acknowledged everything and ended the stream. */
  async end(): Promise<void> {
    this.flush();
    this.call.end();
    await this.closed;
    if (this.error) throw this.error;
  }

  /** Cancels the stream; unacknowledged messages may or may not have been published. */
  cancel(): void {
    this.call.cancel();
  }

  /** Sends the messages published in this turn of the event loop as one request. */
  private flush(): void {
    this.scheduled = false;
    if (this.outgoing.length === 0 || this.call.writableEnded) return;
    const messages = this.outgoing;
    this.outgoing = [];
    this.call.write(create(PublishStreamRequestSchema, { messages }));
  }

  private receive(res: PublishStreamResponse): void {
    if (res.window > 0) this.window = res.window;
    for (const ack of res.acks) {
      const waiting = this.waiting.get(ack.id);
      if (!waiting) continue;
      this.waiting.delete(ack.id);
      if (ack.error) {
        waiting.reject(
          new PrismError(ack.error.code as PrismErrorCode, ack.error.message, {
            ...(ack.error.hint ? { hint: ack.error.hint } : {}),
          }),
        );
      } else if (ack.result) waiting.resolve(ack.result);
    }
    this.wake();
  }

  private fail(err: PrismError): void {
    this.failure ??= err;
    for (const waiting of this.waiting.values()) waiting.reject(err);
    this.waiting.clear();
    this.wake();
  }

  private wake(): void {
    this.wakers.splice(0).forEach((wake) => wake());
  }
}
