import {
  connect,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';
import { connect as netConnect, isIP } from 'node:net';
import { clientTlsFiles, usesTls, type ClientTls } from '../transport/client-tls.js';
import { parseEndpoint, type Endpoint } from '../transport/listen-address.js';
import { GrpcStatus, statusName, type CallError } from '../transport/status-codes.js';

/**
 * A unary gRPC client over `node:http2` (the gRPC-over-HTTP/2 protocol: length-prefixed messages,
 * `content-type: application/grpc`, `te: trailers`, the status in `grpc-status`/`grpc-message`
 * trailers). It is what the CLI's kv commands use instead of grpc-js, which costs more to load
 * than the whole command otherwise takes (bench/RESULTS.md, "CLI start-up"). Its failures carry
 * the status, details and metadata grpc-js would report for the same event (its texts included
 * where our error mapping reads them: src/transport/tls-errors.ts), so one mapping serves both.
 *
 * One HTTP/2 session per channel, opened on the first call and opened again after the server
 * closed it (GOAWAY, a dropped connection) or when its stream ids run low. No compression, no
 * retries; the only streaming use is `openStream`, for the call stream. The proxy calls its
 * runner processes through it (src/proxy/remote-runner.ts), most calls as frames on a call stream
 * (call-stream.ts); `GrpcHttp2Channel.to` opens those sessions on a Unix socket or with TLS
 * options already read.
 */
export class GrpcHttp2Channel {
  readonly endpoint: Endpoint;
  readonly tls: boolean;
  private readonly target: SessionTarget;
  private session: ClientHttp2Session | undefined;
  private closed = false;

  /** Reads the TLS files now, as dialTarget does, so that a bad path fails before any call. */
  constructor(endpoint: string | SessionTarget, tls: ClientTls = {}) {
    this.target = typeof endpoint === 'string' ? sessionTarget(endpoint, tls) : endpoint;
    this.endpoint = this.target.endpoint;
    this.tls = this.target.url.startsWith('https:');
  }

  /** A channel to a Unix socket (plaintext), or to host:port with TLS options already loaded. */
  static to(
    target: { socketPath: string } | { hostPort: string; tls: SecureClientSessionOptions },
  ): GrpcHttp2Channel {
    if ('socketPath' in target) {
      const { socketPath } = target;
      return new GrpcHttp2Channel({
        endpoint: { address: `unix:${socketPath}`, host: 'localhost', port: 0, tls: false },
        url: 'http://localhost',
        authority: 'localhost',
        options: { createConnection: () => netConnect(socketPath) },
      });
    }
    return new GrpcHttp2Channel({
      endpoint: { ...parseEndpoint(target.hostPort), tls: true },
      url: `https://${target.hostPort}`,
      authority: target.hostPort,
      options: target.tls,
    });
  }

  /**
   * Sends one request message to `path` (`/package.Service/Method`) with `metadata` as headers
   * and resolves with the one response message; rejects with a CallError.
   */
  unary(
    path: string,
    message: Uint8Array,
    metadata: Record<string, string>,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(callError(GrpcStatus.UNAVAILABLE, 'Channel has been shut down'));
    const connection = this.connection();
    const headers = this.requestHeaders(path, metadata);
    headers['grpc-timeout'] = grpcTimeout(timeoutMs);
    return new Promise<Uint8Array>((resolve, reject) => {
      let stream: ClientHttp2Stream;
      try {
        stream = connection.session.request(headers);
      } catch (err) {
        // The session died between connection() and request() (a GOAWAY being handled).
        this.drop(connection.session);
        reject(callError(GrpcStatus.UNAVAILABLE, `Connection dropped: ${(err as Error).message}`));
        return;
      }
      new UnaryCall(stream, connection, timeoutMs, resolve, reject).send(message);
    });
  }

  /** The headers of a gRPC request to `path` carrying `metadata`. */
  private requestHeaders(path: string, metadata: Record<string, string>): OutgoingHttpHeaders {
    return {
      ...metadata,
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: path,
      [constants.HTTP2_HEADER_AUTHORITY]: this.target.authority,
      [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      [constants.HTTP2_HEADER_TE]: 'trailers',
      [constants.HTTP2_HEADER_USER_AGENT]: 'prismctl-grpc-http2/1',
    };
  }

  /**
   * Opens a long-lived gRPC stream to `path` on the channel's session (the call stream of
   * call-stream.ts); throws a CallError when the channel is closed or the session just went down.
   */
  openStream(path: string, metadata: Record<string, string> = {}): ClientHttp2Stream {
    if (this.closed) throw callError(GrpcStatus.UNAVAILABLE, 'Channel has been shut down');
    const connection = this.connection();
    try {
      return connection.session.request(this.requestHeaders(path, metadata));
    } catch (err) {
      this.drop(connection.session);
      throw callError(GrpcStatus.UNAVAILABLE, `Connection dropped: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }

  private connection(): Connection {
    const current = this.session;
    if (current && !current.closed && !current.destroyed) {
      if ((current.state.nextStreamID ?? 0) < STREAM_ID_ROTATE) return connectionOf(current);
      current.close(); // calls in flight finish on it; the next ones get a fresh session
    }
    const session = connect(this.target.url, this.target.options);
    const state: Connection = { session, connected: false, closed: false, error: undefined };
    CONNECTIONS.set(session, state);
    // Established once the server's SETTINGS arrive, as for grpc-js: a TLS 1.3 server refuses a
    // client certificate only after the handshake Node reports as 'connect'.
    session.once('remoteSettings', () => {
      state.connected = true;
    });
    session.once('close', () => {
      state.closed = true;
    });
    // A session error fails the calls on it (UnaryCall reads it from here); nothing to throw.
    session.on('error', (err: Error) => {
      state.error ??= err;
    });
    session.once('goaway', () => this.drop(session));
    session.once('close', () => this.drop(session));
    this.session = session;
    return state;
  }

  private drop(session: ClientHttp2Session): void {
    if (this.session === session) this.session = undefined;
  }
}

/** Where a channel's sessions go: the URL to connect, the :authority, and the session options. */
interface SessionTarget {
  endpoint: Endpoint;
  url: string;
  authority: string;
  options: SecureClientSessionOptions;
}

/** The target of an endpoint text (host:port, or a URL) with the CLI's TLS flags. */
function sessionTarget(endpointText: string, tls: ClientTls): SessionTarget {
  const endpoint: Endpoint = parseEndpoint(endpointText);
  const secure = usesTls(endpoint, tls);
  const { host, port } = endpoint;
  const hostPort = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  let options: SecureClientSessionOptions = {};
  if (secure) {
    const { ca, key, cert } = clientTlsFiles(tls);
    options = {
      ...(ca ? { ca } : {}),
      ...(key && cert ? { key, cert } : {}),
      // The name the certificate must carry; Node takes an IP host from the URL by itself.
      ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
    };
  }
  return {
    endpoint,
    url: `${secure ? 'https' : 'http'}://${hostPort}`,
    authority: tls.serverName ?? hostPort,
    options,
  };
}

/** A stream id close to HTTP/2's 2^31 limit: a long-lived channel opens a fresh session. */
const STREAM_ID_ROTATE = 2 ** 30;

interface Connection {
  session: ClientHttp2Session;
  connected: boolean;
  closed: boolean;
  error: Error | undefined;
}
const CONNECTIONS = new WeakMap<ClientHttp2Session, Connection>();
function connectionOf(session: ClientHttp2Session): Connection {
  return CONNECTIONS.get(session)!;
}

/** One call's state: its response headers, the received bytes, and its final status. */
class UnaryCall {
  private httpStatus: number | undefined;
  private readonly chunks: Buffer[] = [];
  private final: (Error & CallError) | { code: 0 } | undefined;
  private streamError: (Error & { code?: string }) | undefined;
  private readonly timer: NodeJS.Timeout;
  private settled = false;

  constructor(
    private readonly stream: ClientHttp2Stream,
    private readonly connection: Connection,
    private readonly timeoutMs: number,
    private readonly resolve: (message: Uint8Array) => void,
    private readonly reject: (err: Error & CallError) => void,
  ) {
    this.timer = setTimeout(() => this.cancel(GrpcStatus.DEADLINE_EXCEEDED, this.deadlineText()), timeoutMs);
    stream.on('response', (headers) => {
      this.httpStatus = Number(headers[constants.HTTP2_HEADER_STATUS]);
      // A trailers-only response carries the status in its headers.
      if (headers['grpc-status'] !== undefined) this.status(headers);
    });
    stream.on('data', (chunk: Buffer) => this.data(chunk));
    stream.on('trailers', (trailers: IncomingHttpHeaders) => this.status(trailers));
    stream.on('error', (err: Error) => {
      this.streamError ??= err;
    });
    // After 'error': grpc-js, too, reads the error before it decides what a closed stream means.
    stream.on('close', () => process.nextTick(() => this.closed()));
  }

  send(message: Uint8Array): void {
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    this.stream.end(frame);
  }

  private data(chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  private status(headers: IncomingHttpHeaders): void {
    const code = Number(headers['grpc-status']);
    if (code === GrpcStatus.OK) {
      this.final = { code: 0 }; // a success's metadata is not read: it is not parsed
      return;
    }
    const metadata = metadataOf(headers);
    const details = decodeMessage(headers['grpc-message']);
    this.final = Number.isInteger(code)
      ? callError(code, details, metadata)
      : callError(GrpcStatus.UNKNOWN, `Received invalid grpc-status ${String(headers['grpc-status'])}`);
  }

  private closed(): void {
    if (this.settled) return;
    const { connected, closed, session } = this.connection;
    if (!connected && !closed && this.final === undefined && !this.streamError) {
      // The session's own error (a refused connection, a TLS alert) tells why; it comes with its close.
      session.once('close', () => this.closed());
      return;
    }
    if (this.final?.code === GrpcStatus.OK) {
      const body = Buffer.concat(this.chunks);
      const messages = frames(body);
      if (messages === undefined)
        return this.fail(callError(GrpcStatus.INTERNAL, 'Received a malformed message frame'));
      if (messages.length === 1) return this.succeed(messages[0]!);
      return this.fail(
        callError(
          GrpcStatus.UNIMPLEMENTED,
          messages.length === 0 ? 'No message received' : 'Too many responses received',
        ),
      );
    }
    if (this.final) return this.fail(this.final as Error & CallError);
    this.fail(this.withoutStatus());
  }

  /** What a call that ended without a gRPC status means, as grpc-js tells it. */
  private withoutStatus(): Error & CallError {
    const { connected, error } = this.connection;
    if (!connected || (this.httpStatus === undefined && error)) {
      const last = error ?? (this.streamError?.cause as Error | undefined) ?? this.streamError;
      return callError(
        GrpcStatus.UNAVAILABLE,
        last
          ? `No connection established. Last error: ${String(last)}`
          : 'Failed to connect: the connection closed before HTTP/2 began',
      );
    }
    if (this.httpStatus !== undefined && this.httpStatus !== 200) return httpStatusError(this.httpStatus);
    // The session went down under the call (the server process died): grpc-js says the same.
    if (this.connection.session.destroyed) return callError(GrpcStatus.UNAVAILABLE, 'Connection dropped');
    const rst = this.stream.rstCode;
    switch (rst) {
      case constants.NGHTTP2_REFUSED_STREAM:
        return callError(GrpcStatus.UNAVAILABLE, 'Stream refused by server');
      case constants.NGHTTP2_CANCEL:
        return error || this.streamError?.code === 'ERR_HTTP2_STREAM_CANCEL'
          ? callError(GrpcStatus.UNAVAILABLE, 'Connection dropped')
          : callError(GrpcStatus.CANCELLED, 'Call cancelled');
      case constants.NGHTTP2_ENHANCE_YOUR_CALM:
        return callError(GrpcStatus.RESOURCE_EXHAUSTED, 'Bandwidth exhausted or memory limit exceeded');
      case constants.NGHTTP2_INADEQUATE_SECURITY:
        return callError(GrpcStatus.PERMISSION_DENIED, 'Protocol not secure enough');
      default:
        return callError(
          GrpcStatus.INTERNAL,
          `Received RST_STREAM with code ${rst} (Call ended without gRPC status)`,
        );
    }
  }

  private cancel(code: number, details: string): void {
    this.fail(callError(code, details));
    this.stream.close(constants.NGHTTP2_CANCEL);
  }

  private deadlineText(): string {
    return deadlineText(this.timeoutMs);
  }

  private succeed(message: Uint8Array): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve(message);
  }

  private fail(err: Error & CallError): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.reject(err);
  }
}

/** The messages of a gRPC body, or undefined when its framing is broken or a message compressed. */
function frames(body: Buffer): Uint8Array[] | undefined {
  const messages: Uint8Array[] = [];
  let at = 0;
  while (at < body.length) {
    if (body.length - at < 5 || body[at] !== 0) return undefined;
    const size = body.readUInt32BE(at + 1);
    if (body.length - at - 5 < size) return undefined;
    messages.push(body.subarray(at + 5, at + 5 + size)); // a Buffer, as grpc-js hands protobuf-es
    at += 5 + size;
  }
  return messages;
}

/** grpc-js's mapping of an HTTP status that is not 200 (gRPC's http-grpc-status-mapping.md). */
function httpStatusError(http: number): Error & CallError {
  const code =
    http === 400
      ? GrpcStatus.INTERNAL
      : http === 401
        ? GrpcStatus.UNAUTHENTICATED
        : http === 403
          ? GrpcStatus.PERMISSION_DENIED
          : http === 404
            ? GrpcStatus.UNIMPLEMENTED
            : [429, 502, 503, 504].includes(http)
              ? GrpcStatus.UNAVAILABLE
              : GrpcStatus.UNKNOWN;
  return callError(code, `Received HTTP status code ${http}`);
}

/** Response metadata as grpc-js's Metadata.get reads it: `-bin` values base64-decoded. */
export class Metadata {
  constructor(private readonly values: Map<string, (string | Buffer)[]>) {}
  get(key: string): (string | Buffer)[] {
    return this.values.get(key.toLowerCase()) ?? [];
  }
}

export function metadataOf(headers: IncomingHttpHeaders): Metadata {
  const values = new Map<string, (string | Buffer)[]>();
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(':') || key.startsWith('grpc-') || key === 'content-type' || value === undefined) {
      continue;
    }
    const list = Array.isArray(value) ? value : [value];
    values.set(
      key,
      key.endsWith('-bin')
        ? list.flatMap((v) => v.split(',')).map((v) => Buffer.from(v.trim(), 'base64'))
        : list,
    );
  }
  return new Metadata(values);
}

/** grpc-message is percent-encoded (gRPC's PROTOCOL-HTTP2.md). */
function decodeMessage(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** What a call that ran out of time says, as grpc-js says it. */
export function deadlineText(timeoutMs: number): string {
  return `Deadline exceeded after ${(timeoutMs / 1000).toFixed(3)}s`;
}

/** The grpc-timeout header: at most 8 digits, in the finest unit that fits. */
function grpcTimeout(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  return whole < 1e8 ? `${whole}m` : `${Math.ceil(whole / 1000)}S`;
}

export function callError(
  code: number,
  details: string,
  metadata: Metadata = new Metadata(new Map()),
): Error & CallError {
  return Object.assign(new Error(`${code} ${statusName(code)}: ${details}`), { code, details, metadata });
}
