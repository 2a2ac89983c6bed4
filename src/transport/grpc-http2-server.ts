/**
 * A gRPC server on `node:http2` that answers unary calls itself and hands every other stream to a
 * grpc-js server in the same process. A runner process (src/runners/runner-server.ts) serves the
 * proxy's unary calls with it, and the proxy (src/proxy/server.ts) its clients' unary calls.
 *
 * Unary calls (the gRPC-over-HTTP/2 protocol, PROTOCOL-HTTP2.md): one length-prefixed message in,
 * one out, the status in `grpc-status`/`grpc-message` trailers (trailers-only for a failure), the
 * caller's metadata as headers (`-bin` keys base64), `grpc-timeout` as the deadline
 * (DEADLINE_EXCEEDED), a client's RST_STREAM as cancellation (the handler's call emits
 * 'cancelled'), and a request above the message limit refused with RESOURCE_EXHAUSTED. The
 * handlers are grpc-js unary handlers, called with a call object that has what grpc-js's has for
 * them (request, metadata, getPeer, getDeadline, getPath, cancelled, sendMetadata).
 *
 * The same unary methods are also served as frames on a call stream (call-frames.ts), which the
 * proxy uses: many calls on one HTTP/2 stream, each with the same handler, deadline, cancellation
 * and statuses as on its own stream.
 *
 * Server-streaming methods named in `serverStreams` are served here too (ServerStreamExchange):
 * the handler gets a call with what grpc-js's ServerWritableStream has for such handlers (request,
 * metadata, write, end, sendMetadata, an 'error' event as the status, 'cancelled', 'close'), and
 * each message goes out as its 5-byte prefix and the serializer's buffer as it is: grpc-js copies
 * every message once more behind its prefix (serializeMessage), which for a claim-checked
 * Subscribe delivery is the whole payload again. Client-streaming methods named in `clientStreams`
 * are served here as well (client-stream-exchange.ts).
 *
 * Everything else — other streaming methods, grpc.health.v1, unknown paths, compressed requests, non-gRPC
 * requests — is handed, stream and headers as they came, to the grpc-js server's own stream
 * handler (see streamHandlerOf), so those keep grpc-js's behaviour: its UNIMPLEMENTED for an
 * unknown method, its decompression, its interceptors, its flow control and limits on streams.
 */
import {
  Metadata,
  status as Status,
  type MethodDefinition,
  type Server,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import {
  constants,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { PrismError } from '../errors.js';
import { CALLS_PATH, MessageReader } from './call-frames.js';
import { CallStream } from './call-stream-server.js';
import { ClientStreamExchange } from './client-stream-exchange.js';
import {
  callMetadata,
  listenUntilClose,
  refuse,
  requestReader,
  startDeadline,
  StreamAnswer,
  timeoutMs,
} from './http2-exchange.js';
import { Invocation, peerOf, type UnaryHandler, type UnaryRoute } from './unary-invocation.js';
import { MAX_MESSAGE_BYTES } from './limits.js';
import { splitHostPort } from './listen-address.js';
import type { ServerCertificates } from './server-tls.js';
import { isUnixAddress, unixListenPath } from './unix-socket.js';

export interface GrpcHttp2ServerOptions {
  /** Serves every stream that is not a unary method added here (and every method, registered). */
  fallback: Server;
  /** Largest request or response message, in bytes (default 4 MiB, as grpc-js's). */
  maxMessageBytes?: number;
  /** TLS (mutual when it names a client CA); plaintext without. */
  certificates?: ServerCertificates | undefined;
  /** Serves the call stream (call-frames.ts), the proxy's way into a runner process (default on). */
  callStream?: boolean;
  /** Paths of server-streaming methods to serve here rather than through the fallback. */
  serverStreams?: readonly string[];
  /** Paths of client-streaming methods to serve here (client-stream-exchange.ts). */
  clientStreams?: readonly string[];
}

/** Keepalive as the project's grpc-js servers (limits.ts): ping an idle peer, drop a dead one. */
const KEEPALIVE_MS = 120_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;

/**
 * The HTTP/2 receive window, per stream and per connection: what a client may send before the
 * server has read it. HTTP/2's default of 64 KiB stalls a client stream each time grpc-js pauses it
 * between two messages (a PublishUpload's 256 KiB frames: every frame). Measured through the proxy
 * (claim check, alternating builds, load 1.9-4.0), an upload's publish and delivery took 41-52
 * instead of 46-67 ms for 1 MiB and 185-223 instead of 226-281 ms for 10 MiB; at 100 MiB the store
 * is the limit and it made no difference. It is also what one connection can make the server
 * buffer unread (the claim check's 100 MiB upload still peaks at +47 MiB RSS, the bound is 64).
 */
export const RECEIVE_WINDOW_BYTES = 1024 * 1024;

/**
 * As grpc-js's own servers set them, since the streams handed to it run on these sessions: no
 * limit on a header block's size, and Node's session-memory limit (10 MB, past which it refuses new
 * streams) off; grpc-js turns it off because Node degrades badly once it is reached. And the
 * receive window above (for each stream; the connection's is set per session).
 */
const HTTP2_OPTIONS = {
  maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
  maxSessionMemory: Number.MAX_SAFE_INTEGER,
  settings: { initialWindowSize: RECEIVE_WINDOW_BYTES },
};

export class GrpcHttp2Server {
  private readonly routes = new Map<string, UnaryRoute>();
  private readonly streamRoutes = new Map<string, ServerStreamRoute>();
  private readonly clientStreamRoutes = new Map<string, UnaryRoute>();
  private readonly maxMessageBytes: number;
  private readonly http2: Http2Server | Http2SecureServer;
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly fallbackStream: StreamHandler;
  private unfollow: (() => void) | undefined;
  private readonly callStreams = new Set<CallStream>();
  private closing = false;

  constructor(private readonly options: GrpcHttp2ServerOptions) {
    this.maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.fallbackStream = streamHandlerOf(options.fallback);
    const { certificates } = options;
    if (certificates) {
      const secure = createSecureServer({ ...certificates.httpsOptions(), ...HTTP2_OPTIONS });
      this.unfollow = certificates.follow((o) => secure.setSecureContext(o));
      this.http2 = secure;
    } else {
      this.http2 = createServer(HTTP2_OPTIONS);
    }
    this.http2.on('session', (session: ServerHttp2Session) => this.track(session));
    this.http2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
      this.onStream(stream, headers),
    );
  }

  /** Registers a service: its unary methods are answered here, every method by the fallback too. */
  addService(definition: ServiceDefinition, implementation: UntypedServiceImplementation): void {
    this.options.fallback.addService(definition, implementation);
    for (const [name, method] of Object.entries(definition) as [
      string,
      MethodDefinition<unknown, unknown>,
    ][]) {
      const handler = implementation[name];
      if (typeof handler !== 'function') continue;
      const { path } = method;
      const route = { path, deserialize: method.requestDeserialize, serialize: method.responseSerialize };
      if (!method.requestStream && !method.responseStream)
        this.routes.set(path, { ...route, handler: handler as UnaryHandler });
      else if (!method.requestStream && this.options.serverStreams?.includes(path))
        this.streamRoutes.set(path, { ...route, handler: handler as ServerStreamHandler });
      else if (!method.responseStream && this.options.clientStreams?.includes(path))
        this.clientStreamRoutes.set(path, { ...route, handler: handler as UnaryHandler });
    }
  }

  /** Listens on host:port (returns the bound port) or unix:/absolute/path (returns 0). */
  async listen(address: string): Promise<number> {
    const bind = (target: { path: string } | { host: string; port: number }) =>
      new Promise<void>((resolve, reject) => {
        const fail = (err: Error) =>
          reject(
            new PrismError('E_UNAVAILABLE', `cannot listen on ${address}: ${err.message}`, {
              hint: 'pick a free port with --listen, or stop what holds this one',
            }),
          );
        this.http2.once('error', fail);
        this.http2.listen(target, () => {
          this.http2.off('error', fail);
          resolve();
        });
      });
    if (isUnixAddress(address)) {
      await bind({ path: unixListenPath(address) });
      return 0;
    }
    const [host, port] = splitHostPort(address);
    await bind({ host, port });
    const bound = this.http2.address();
    return typeof bound === 'object' && bound ? bound.port : port;
  }

  /**
   * Stops taking connections, lets calls in flight finish (at most `timeoutMs`), then closes every
   * connection; the fallback grpc-js server is the caller's to shut down.
   */
  async close(timeoutMs: number): Promise<void> {
    this.unfollow?.();
    this.closing = true;
    for (const calls of this.callStreams) calls.drain();
    const closed = new Promise<void>((resolve) => this.http2.close(() => resolve()));
    for (const session of this.sessions) session.close();
    const timer = setTimeout(() => {
      for (const session of this.sessions) session.destroy();
    }, timeoutMs);
    await closed;
    clearTimeout(timer);
  }

  private track(session: ServerHttp2Session): void {
    this.sessions.add(session);
    session.setLocalWindowSize(RECEIVE_WINDOW_BYTES);
    session.on('error', () => undefined); // the session closes; its streams see why
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer = setTimeout(() => {
        const dead = setTimeout(() => session.destroy(), KEEPALIVE_TIMEOUT_MS);
        dead.unref();
        const sent = session.ping((err) => {
          clearTimeout(dead);
          if (err) session.destroy();
          else arm();
        });
        if (!sent) clearTimeout(dead);
      }, KEEPALIVE_MS);
      timer.unref();
    };
    arm();
    session.once('close', () => {
      clearTimeout(timer);
      this.sessions.delete(session);
    });
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined); // a reset or a dropped connection: the call's 'close' tells
    const path = headers[constants.HTTP2_HEADER_PATH] as string;
    const grpc = headers[constants.HTTP2_HEADER_METHOD] === 'POST' && isGrpc(headers['content-type']);
    const route = this.routes.get(path);
    // A compressed request (grpc-encoding gzip, deflate) is grpc-js's to decompress.
    const plain = (headers['grpc-encoding'] ?? 'identity') === 'identity';
    if (route && grpc && plain)
      return new UnaryExchange(route, stream, headers, this.maxMessageBytes).start();
    const streamRoute = this.streamRoutes.get(path);
    if (streamRoute && grpc && plain)
      return new ServerStreamExchange(streamRoute, stream, headers, this.maxMessageBytes).start();
    const clientStreamRoute = this.clientStreamRoutes.get(path);
    if (clientStreamRoute && grpc && plain)
      return new ClientStreamExchange(clientStreamRoute, stream, headers, this.maxMessageBytes).start();
    if (path === CALLS_PATH && grpc && this.routes.size > 0 && this.options.callStream !== false) {
      if (this.closing) return refuse(stream, Status.UNAVAILABLE, 'the server is stopping');
      return new CallStream(this.routes, stream, headers, this.maxMessageBytes, this.callStreams).start();
    }
    this.fallbackStream([], stream, headers); // everything else: grpc-js's, as it came
  }
}

/** How grpc-js's server takes one incoming HTTP/2 stream (its `_streamHandler`). */
type StreamHandler = (interceptors: [], stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

/**
 * The fallback's own handler of an incoming stream. grpc-js has no public way to hand it a stream
 * (its connection injector takes whole connections, and relaying each stream over an in-memory
 * connection to it cost 2.8 times the proxy's CPU on a 100 MiB upload), so this calls the method
 * its own HTTP/2 servers call, private in @grpc/grpc-js 1.14: its lookup, UNIMPLEMENTED, content-type
 * check, interceptors, limits and flow control all apply. An upgrade without it fails here, loudly.
 */
function streamHandlerOf(server: Server): StreamHandler {
  const handler = (server as unknown as { _streamHandler?: StreamHandler })._streamHandler;
  if (typeof handler !== 'function')
    throw new Error(
      'GrpcHttp2Server: this @grpc/grpc-js has no Server#_streamHandler (written against 1.14)',
    );
  return handler.bind(server);
}

function isGrpc(type: string | string[] | undefined): boolean {
  return typeof type === 'string' && (type === 'application/grpc' || type.startsWith('application/grpc+'));
}

/** One unary call on its own HTTP/2 stream: read the request message, answer on the stream. */
class UnaryExchange {
  private readonly reader: MessageReader;
  private body: Buffer | undefined;
  private messages = 0;
  private refused = false;
  private readonly invocation: Invocation;

  constructor(
    private readonly route: UnaryRoute,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    max: number,
  ) {
    this.invocation = new Invocation(route, max, new StreamAnswer(stream));
    this.reader = requestReader(
      max,
      (message) => {
        this.messages++;
        this.body = message;
      },
      (code, details) => this.refuse(code, details),
    );
  }

  start(): void {
    const invalid = startDeadline(this.headers, this.invocation);
    if (invalid !== undefined) return this.refuse(Status.INTERNAL, invalid);
    listenUntilClose(this.stream, {
      data: (chunk) => {
        if (!this.refused) this.reader.push(chunk);
      },
      end: () => this.requestEnded(),
      close: () => {
        if (!this.invocation.answered || this.stream.rstCode !== constants.NGHTTP2_NO_ERROR)
          this.invocation.cancel();
      },
    });
  }

  private refuse(code: number, details: string): void {
    this.refused = true;
    this.invocation.fail(code, details);
  }

  private requestEnded(): void {
    if (this.refused || this.invocation.answered) return;
    const { path } = this.route;
    if (this.messages === 0 || !this.body)
      return this.refuse(Status.UNIMPLEMENTED, `Received no request message for unary call ${path}`);
    if (this.messages > 1)
      return this.refuse(Status.UNIMPLEMENTED, `Received a second request message for unary call ${path}`);
    const { stream } = this;
    this.invocation.run(
      this.body,
      callMetadata(this.headers),
      () => peerOf(stream), // asked rarely; getpeername costs a system call
      this.headers[constants.HTTP2_HEADER_AUTHORITY],
    );
  }
}

/** A server-streaming handler, as grpc-js calls it. */
type ServerStreamHandler = (call: ServerWritableStream<unknown, unknown>) => void;

interface ServerStreamRoute {
  path: string;
  handler: ServerStreamHandler;
  deserialize: (bytes: Buffer) => unknown;
  serialize: (value: unknown) => Buffer;
}

/**
 * One server-streaming call on its own HTTP/2 stream: the request message read as a unary call's
 * (the same refusals), then the handler's messages, and its status in trailers (trailers-only
 * when nothing was sent). The call object is this exchange: grpc-js's ServerWritableStream as
 * such handlers use it, where emitting 'error' ends the call with the error's status.
 */
class ServerStreamExchange extends EventEmitter {
  request: unknown;
  metadata = new Metadata();
  cancelled = false;
  private readonly reader: MessageReader;
  private body: Buffer | undefined;
  private messages = 0;
  private responded = false;
  private ended = false;
  private deadline = Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly route: ServerStreamRoute,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly max: number,
  ) {
    super();
    this.on('error', (err: { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown }) =>
      this.finish(
        typeof err?.code === 'number' ? err.code : Status.UNKNOWN,
        typeof err?.details === 'string'
          ? err.details
          : typeof err?.message === 'string'
            ? err.message
            : 'Unknown Error',
        err?.metadata instanceof Metadata ? err.metadata : undefined,
      ),
    );
    this.reader = requestReader(
      max,
      (message) => {
        this.messages++;
        this.body = message;
      },
      (code, details) => this.finish(code, details),
    );
  }

  start(): void {
    const timeout = this.headers['grpc-timeout'];
    const ms = timeoutMs(timeout);
    if (ms === null) return this.finish(Status.INTERNAL, `Invalid grpc-timeout value "${String(timeout)}"`);
    if (ms !== undefined) {
      this.deadline = Date.now() + ms;
      this.timer = setTimeout(() => {
        this.finish(Status.DEADLINE_EXCEEDED, 'Deadline exceeded');
        this.cancel();
      }, ms);
    }
    listenUntilClose(this.stream, {
      data: (chunk) => {
        if (!this.ended) this.reader.push(chunk);
      },
      end: () => this.requestEnded(),
      drain: () => this.emit('drain'),
      close: () => {
        clearTimeout(this.timer);
        if (!this.ended || this.stream.rstCode !== constants.NGHTTP2_NO_ERROR) this.cancel();
        this.ended = true;
        this.emit('close');
      },
    });
  }

  private requestEnded(): void {
    if (this.ended) return;
    const { path } = this.route;
    if (this.messages === 0 || !this.body)
      return this.finish(
        Status.UNIMPLEMENTED,
        `Received no request message for server-streaming call ${path}`,
      );
    if (this.messages > 1)
      return this.finish(
        Status.UNIMPLEMENTED,
        `Received a second request message for server-streaming call ${path}`,
      );
    try {
      this.request = this.route.deserialize(this.body);
    } catch (err) {
      return this.finish(Status.INTERNAL, `Error deserializing request: ${(err as Error).message}`);
    }
    this.body = undefined;
    this.metadata = callMetadata(this.headers);
    try {
      this.route.handler(this as unknown as ServerWritableStream<unknown, unknown>);
    } catch (err) {
      this.emit('error', err);
    }
  }

  getPeer(): string {
    return peerOf(this.stream);
  }

  getDeadline(): number {
    return this.deadline;
  }

  getPath(): string {
    return this.route.path;
  }

  getHost(): unknown {
    return this.headers[constants.HTTP2_HEADER_AUTHORITY];
  }

  get writableNeedDrain(): boolean {
    return this.stream.writableNeedDrain;
  }

  /** Sends the response headers now, with `metadata`. */
  sendMetadata(metadata?: Metadata): void {
    if (this.ended || this.responded || this.stream.destroyed) return;
    this.responded = true;
    this.stream.respond(
      { ...metadata?.toHttp2Headers(), ':status': 200, 'content-type': 'application/grpc' },
      { waitForTrailers: true },
    );
  }

  /** Sends one message: its prefix, then the serializer's bytes as they are (no copy). */
  write(message: unknown, callback?: (err?: Error | null) => void): boolean {
    if (this.ended || this.stream.destroyed) return false;
    let bytes: Buffer;
    try {
      bytes = this.route.serialize(message);
    } catch (err) {
      this.finish(Status.INTERNAL, `Error serializing response: ${(err as Error).message}`);
      return false;
    }
    if (bytes.length > this.max) {
      this.finish(
        Status.RESOURCE_EXHAUSTED,
        `Sent message larger than max (${bytes.length} vs. ${this.max})`,
      );
      return false;
    }
    this.sendMetadata();
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(bytes.length, 1);
    this.stream.write(prefix);
    return this.stream.write(bytes, callback);
  }

  /** Ends the call with OK (and `metadata` in the trailers). */
  end(metadata?: Metadata): void {
    this.finish(Status.OK, 'OK', metadata);
  }

  private finish(code: number, details: string, metadata?: Metadata): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    const { stream } = this;
    if (stream.closed || stream.destroyed) return;
    if (!this.responded) return refuse(stream, code, details, metadata);
    stream.once('wantTrailers', () =>
      stream.sendTrailers({
        ...metadata?.toHttp2Headers(),
        'grpc-status': String(code),
        'grpc-message': encodeURI(details),
      }),
    );
    stream.end();
  }

  private cancel(): void {
    this.ended = true;
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'Cancelled by client');
  }
}
