/**
 * The runner's side of the call stream (call-frames.ts): unary calls as frames on one long HTTP/2
 * stream, each run as an Invocation of its method's handler; results go back as frames in the
 * order they finish. Draining takes no new calls (UNAVAILABLE) and ends the stream once the calls
 * in flight answered; a stream that closes cancels the calls still running.
 */
import { Metadata, status as Status } from '@grpc/grpc-js';
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import {
  CANCEL,
  decodeCall,
  encodeResult,
  headersOf,
  MessageReader,
  type CallFrame,
  type Entries,
} from './call-frames.js';
import { Invocation, peerOf, type UnaryRoute } from './unary-invocation.js';

/** Metadata as a call frame carries it: HTTP/2 header fields, `-bin` values in base64. */
function entriesOf(metadata: Metadata | undefined): Array<[string, string]> {
  if (!metadata) return [];
  const out: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(metadata.toHttp2Headers()))
    for (const v of Array.isArray(value) ? value : [value]) out.push([key, String(v)]);
  return out;
}

/**
 * The call stream (call-frames.ts): unary calls as frames on one long HTTP/2 stream, each run as
 * an Invocation of its method's handler; results go back as frames in the order they finish.
 */
export class CallStream {
  private readonly calls = new Map<number, Invocation>();
  private draining = false;
  private ended = false;

  constructor(
    private readonly routes: ReadonlyMap<string, UnaryRoute>,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly max: number,
    private readonly streams: Set<CallStream>,
  ) {}

  start(): void {
    const { stream } = this;
    this.streams.add(this);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
    const reader = new MessageReader(
      this.max,
      (frame) => this.frame(frame),
      (head, size) => {
        if (head.length >= 4)
          this.result(
            head.readUInt32BE(0),
            Status.RESOURCE_EXHAUSTED,
            [],
            `Received message larger than max (${size} vs ${this.max})`,
          );
      },
    );
    stream.on('data', (chunk: Buffer) => reader.push(chunk));
    stream.on('end', () => this.drain()); // the proxy closed its side: finish what is in flight
    stream.on('close', () => {
      this.streams.delete(this);
      for (const invocation of this.calls.values()) invocation.cancel();
      this.calls.clear();
    });
  }

  /** Takes no new calls (they get UNAVAILABLE), ends the stream once those in flight answered. */
  drain(): void {
    this.draining = true;
    this.endWhenIdle();
  }

  private endWhenIdle(): void {
    if (!this.draining || this.calls.size > 0 || this.ended) return;
    this.ended = true;
    if (!this.stream.closed && !this.stream.destroyed) this.stream.end();
  }

  private frame(bytes: Buffer): void {
    let frame: CallFrame;
    try {
      frame = decodeCall(bytes);
    } catch {
      this.stream.close(constants.NGHTTP2_PROTOCOL_ERROR); // not a peer that speaks this protocol
      return;
    }
    if (frame.kind === CANCEL) {
      const invocation = this.calls.get(frame.id);
      this.calls.delete(frame.id);
      invocation?.cancel();
      this.endWhenIdle();
      return;
    }
    if (this.draining) return this.result(frame.id, Status.UNAVAILABLE, [], 'the runner process is stopping');
    const route = this.routes.get(frame.path);
    if (!route)
      return this.result(
        frame.id,
        Status.UNIMPLEMENTED,
        [],
        `The server does not implement the method ${frame.path}`,
      );
    const { id } = frame;
    const invocation = new Invocation(route, this.max, {
      ok: (message, headers, trailer) => {
        const entries = entriesOf(headers);
        if (trailer) entries.push(...entriesOf(trailer));
        this.settle(id, invocation, Status.OK, entries, message);
      },
      fail: (code, details, metadata) => this.settle(id, invocation, code, entriesOf(metadata), details),
    });
    this.calls.set(id, invocation);
    invocation.deadlineIn(frame.timeoutMs);
    const metadata = Metadata.fromHttp2Headers(headersOf(frame.metadata));
    const { stream } = this;
    invocation.run(
      frame.request,
      metadata,
      () => peerOf(stream),
      this.headers[constants.HTTP2_HEADER_AUTHORITY],
    );
  }

  private settle(
    id: number,
    invocation: Invocation,
    code: number,
    entries: Entries,
    body: Buffer | string,
  ): void {
    if (this.calls.get(id) !== invocation) return; // cancelled meanwhile: nobody waits for it
    this.calls.delete(id);
    this.result(id, code, entries, body);
    this.endWhenIdle();
  }

  private result(id: number, code: number, entries: Entries, body: Buffer | string): void {
    if (this.stream.closed || this.stream.destroyed || this.ended) return;
    this.stream.write(encodeResult(id, code, entries, body));
  }
}
