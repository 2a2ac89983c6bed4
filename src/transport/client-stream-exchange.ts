/**
 * One client-streaming call on its own HTTP/2 stream, for the methods named in GrpcHttp2Server's
 * `clientStreams` (the proxy's Producer/PublishUpload). The handler is called at once, as grpc-js
 * calls it, with a call whose `for await` yields the request messages as they arrive; its one
 * answer goes out as a unary call's (Invocation: the deadline, cancellation, the message limit).
 *
 * Why not grpc-js's own: it reads a client stream through an object-mode Readable and its async
 * iterator, a few promise and stream hops per message, and a PublishUpload spends its time there
 * between the client's frames and the object store's socket (bench/RESULTS.md, session 14).
 *
 * The handler's call has what grpc-js's ServerReadableStream has for a handler that reads it with
 * `for await`: the messages, metadata, getPeer, getDeadline, getPath, getHost, sendMetadata,
 * `cancelled` and the 'cancelled' event (not the Readable's events).
 *
 * Flow control: messages the handler has not taken yet wait here, at most QUEUE_BYTES of them;
 * past that the HTTP/2 stream is paused, so Node stops granting the client window and HTTP/2 holds
 * the client back. A message above the limit ends the call with RESOURCE_EXHAUSTED, a compressed
 * one with UNIMPLEMENTED, one that does not decode with INTERNAL. When the call ends early (the
 * client resets the stream, the deadline passes, or one of those refusals), the handler's
 * iteration fails with that error and the messages still queued are dropped. (A client that
 * cancels with grpc-js or node:http2 ends its side of the stream before it resets it: as under
 * grpc-js, the handler may see the messages end first, and the call's 'cancelled' after.)
 */
import { status as Status } from '@grpc/grpc-js';
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { MessageReader } from './call-frames.js';
import {
  callMetadata,
  listenUntilClose,
  requestReader,
  startDeadline,
  StreamAnswer,
} from './http2-exchange.js';
import { Invocation, peerOf, type UnaryRoute } from './unary-invocation.js';

/** Bytes of received messages the handler has not taken before the stream is paused. */
export const QUEUE_BYTES = 1024 * 1024;

interface Queued {
  message: unknown;
  bytes: number;
}

interface Waiter {
  resolve: (result: IteratorResult<unknown>) => void;
  reject: (err: Error) => void;
}

/** The error a handler's iteration fails with when its call ends early. */
function callError(code: Status, details: string): Error {
  return Object.assign(new Error(details), { code, details });
}

export class ClientStreamExchange {
  private readonly invocation: Invocation;
  private readonly reader: MessageReader;
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  private waiter: Waiter | undefined;
  /** The client's last message has arrived. */
  private ended = false;
  /** Why the handler's iteration fails, once the call has ended early. */
  private failure: Error | undefined;
  /** The handler still takes messages. */
  private reading = true;
  private paused = false;

  constructor(
    route: UnaryRoute,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    max: number,
  ) {
    const answer = new StreamAnswer(stream);
    // An answer before the client's last message (an early refusal, or a handler that did not need
    // the rest) lets the client stop: what it still sends is dropped, and once the answer is out
    // RST_STREAM NO_ERROR says so (RFC 9113 §8.1), or a client held back by flow control would wait.
    const answered = () => {
      this.leave();
      if (!this.ended && !stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR);
    };
    this.invocation = new Invocation(route, max, {
      ok: (message, headers, trailer) => {
        answer.ok(message, headers, trailer);
        answered();
      },
      fail: (code, details, metadata) => {
        answer.fail(code, details, metadata);
        answered();
      },
    });
    this.reader = requestReader(
      max,
      (bytes) => this.received(route, bytes),
      (code, details) => this.refuse(code, details),
    );
  }

  start(): void {
    const invalid = startDeadline(this.headers, this.invocation);
    if (invalid !== undefined) return this.refuse(Status.INTERNAL, invalid);
    this.invocation.call.once('cancelled', () =>
      this.abort(
        callError(Status.CANCELLED, 'the call ended: the client cancelled it, or its deadline passed'),
      ),
    );
    listenUntilClose(this.stream, {
      data: (chunk) => {
        if (this.reading) this.reader.push(chunk);
      },
      end: () => {
        // A stream the client reset may end its readable side too: that is the call's end ('close').
        if (this.stream.aborted) return;
        this.ended = true;
        if (this.queue.length === 0) this.settle({ value: undefined, done: true });
      },
      close: () => {
        if (!this.invocation.answered || this.stream.rstCode !== constants.NGHTTP2_NO_ERROR)
          this.invocation.cancel();
      },
    });
    const iterator: AsyncIterableIterator<unknown> = {
      next: () => this.next(),
      return: () => {
        this.leave();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    this.invocation.invoke(
      { [Symbol.asyncIterator]: () => iterator },
      callMetadata(this.headers),
      () => peerOf(this.stream), // asked rarely; getpeername costs a system call
      this.headers[constants.HTTP2_HEADER_AUTHORITY],
    );
  }

  private next(): Promise<IteratorResult<unknown>> {
    if (this.failure) return Promise.reject(this.failure);
    const first = this.queue.shift();
    if (first !== undefined) {
      this.queuedBytes -= first.bytes;
      if (this.paused && this.queuedBytes < QUEUE_BYTES) {
        this.paused = false;
        this.stream.resume();
      }
      return Promise.resolve({ value: first.message, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private received(route: UnaryRoute, bytes: Buffer): void {
    let message: unknown;
    try {
      message = route.deserialize(bytes);
    } catch (err) {
      return this.refuse(Status.INTERNAL, `Error deserializing request: ${(err as Error).message}`);
    }
    if (this.waiter) return this.settle({ value: message, done: false });
    this.queue.push({ message, bytes: bytes.length });
    this.queuedBytes += bytes.length;
    if (!this.paused && this.queuedBytes >= QUEUE_BYTES) {
      this.paused = true;
      this.stream.pause();
    }
  }

  private settle(result: IteratorResult<unknown>): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(result);
  }

  /** Ends the call with a status of its own making; the handler's iteration fails with it. */
  private refuse(code: Status, details: string): void {
    this.invocation.fail(code, details);
    this.abort(callError(code, details));
  }

  private abort(err: Error): void {
    this.failure ??= err;
    this.leave();
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
  }

  /** The handler takes no more messages: what is queued and what still comes is dropped. */
  private leave(): void {
    this.reading = false;
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (this.paused) {
      this.paused = false;
      this.stream.resume();
    }
  }
}
