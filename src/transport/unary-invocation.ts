/**
 * One call of a grpc-js handler that answers once, outside grpc-js (grpc-http2-server.ts serves
 * unary calls on node:http2, on their own streams and on the call stream, and client-streaming
 * calls, client-stream-exchange.ts): the call object such handlers read (request or the
 * messages, metadata, getPeer, getDeadline, getPath, cancelled, sendMetadata and 'cancelled'), the
 * deadline, cancellation, and the handler's answer, serialized and checked against the message
 * limit, handed on once.
 */
import { Metadata, status as Status, type ServerUnaryCall } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import type { ServerHttp2Stream } from 'node:http2';

export type UnaryHandler = (
  call: ServerUnaryCall<unknown, unknown>,
  callback: (err: unknown, value?: unknown, trailer?: Metadata | null) => void,
) => void;

export interface UnaryRoute {
  path: string;
  handler: UnaryHandler;
  deserialize: (bytes: Buffer) => unknown;
  serialize: (value: unknown) => Buffer;
}

/** How a unary call's outcome leaves: on its own HTTP/2 stream, or as a frame on a call stream. */
export interface Answer {
  ok(message: Buffer, headers: Metadata | undefined, trailer: Metadata | undefined): void;
  fail(code: number, details: string, metadata: Metadata | undefined): void;
}

/**
 * One unary handler call: the call object grpc-js handlers expect, the deadline, cancellation, and
 * the handler's answer (serialized, checked against the message limit) handed to `answer` once.
 */
export class Invocation {
  readonly call: EventEmitter & Record<string, unknown> = new EventEmitter() as EventEmitter &
    Record<string, unknown>;
  private done = false;
  private deadline = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private responseMetadata: Metadata | undefined;

  constructor(
    private readonly route: UnaryRoute,
    private readonly max: number,
    private readonly answer: Answer,
  ) {}

  /** Starts the deadline clock (`timeoutMs` absent or 0: no deadline). */
  deadlineIn(timeoutMs: number | undefined): void {
    if (!timeoutMs) return;
    this.deadline = Date.now() + timeoutMs;
    this.timer = setTimeout(() => {
      this.fail(Status.DEADLINE_EXCEEDED, 'Deadline exceeded');
      this.cancel();
    }, timeoutMs);
  }

  run(body: Buffer, metadata: Metadata, peer: () => string, host: unknown): void {
    if (this.done) return;
    let request: unknown;
    try {
      request = this.route.deserialize(body);
    } catch (err) {
      return this.fail(Status.INTERNAL, `Error deserializing request: ${(err as Error).message}`);
    }
    this.invoke({ request }, metadata, peer, host);
  }

  /**
   * Calls the handler with the call object: `fields` (a unary call's request, a client stream's
   * way to its messages) and what every call has.
   */
  invoke(fields: Record<string, unknown>, metadata: Metadata, peer: () => string, host: unknown): void {
    if (this.done) return;
    Object.assign(this.call, {
      ...fields,
      metadata,
      cancelled: false,
      getPeer: peer,
      getDeadline: () => this.deadline,
      getPath: () => this.route.path,
      getHost: () => host,
      sendMetadata: (m: Metadata) => {
        this.responseMetadata = m;
      },
    });
    try {
      this.route.handler(this.call as unknown as ServerUnaryCall<unknown, unknown>, (err, value, trailer) =>
        err ? this.failWith(err) : this.succeed(value, trailer ?? undefined),
      );
    } catch (err) {
      this.failWith(err);
    }
  }

  private succeed(value: unknown, trailer: Metadata | undefined): void {
    if (this.done) return;
    let message: Buffer;
    try {
      message = this.route.serialize(value);
    } catch (err) {
      return this.fail(Status.INTERNAL, `Error serializing response: ${(err as Error).message}`);
    }
    if (message.length > this.max)
      return this.fail(
        Status.RESOURCE_EXHAUSTED,
        `Sent message larger than max (${message.length} vs. ${this.max})`,
      );
    if (!this.finish()) return;
    this.answer.ok(message, this.responseMetadata, trailer);
  }

  private failWith(err: unknown): void {
    const e = err as { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown };
    const code = typeof e?.code === 'number' ? e.code : Status.UNKNOWN;
    const details =
      typeof e?.details === 'string'
        ? e.details
        : typeof e?.message === 'string'
          ? e.message
          : 'Unknown Error';
    this.fail(code, details, e?.metadata instanceof Metadata ? e.metadata : undefined);
  }

  fail(code: number, details: string, metadata?: Metadata): void {
    if (!this.finish()) return;
    if (this.responseMetadata) {
      const merged = this.responseMetadata.clone();
      if (metadata) merged.merge(metadata);
      metadata = merged;
    }
    this.answer.fail(code, details, metadata);
  }

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.timer);
    return true;
  }

  /** The client went away or cancelled (or the deadline passed): the handler's call is cancelled. */
  cancel(): void {
    clearTimeout(this.timer);
    this.done = true;
    if (this.call.cancelled === true) return;
    this.call.cancelled = true;
    this.call.emit('cancelled', 'Cancelled by client');
  }

  get answered(): boolean {
    return this.done;
  }
}

/** The peer of a call, as grpc-js names it; asked rarely (getpeername costs a system call). */
export function peerOf(stream: ServerHttp2Stream): string {
  const socket = stream.session?.socket;
  return socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix';
}
