/**
 * Unary gRPC calls from the proxy to a runner process on plain node:http2, one HTTP/2 session per
 * runner process. The proxy → runner hop is the launched path's whole overhead, and a grpc-js
 * client costs about 2.5 times the CPU per call of node:http2 here (bench/RESULTS.md, "Launched
 * runners"): its channel, filter stack and per-call timers are built for what this hop never needs
 * (name resolution, load balancing, retries, compression). Streaming calls (PublishStream, Consume)
 * stay on grpc-js: they are long-lived, so their setup cost does not matter.
 *
 * Wire format (the gRPC over HTTP/2 protocol): POST /<service>/<Method>, content-type
 * application/grpc, te: trailers, grpc-timeout; one length-prefixed uncompressed message each way;
 * the status in the grpc-status / grpc-message trailers (or in the headers of a trailers-only
 * answer). Metadata keys ending in -bin travel base64-encoded, as gRPC specifies.
 */
import http2, {
  type ClientHttp2Session,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';
import { connect } from 'node:net';
import { GrpcStatus, type CallError } from '../../transport/status-codes.js';

/** How the channel opens its session: a Unix socket path, or an https:// authority with TLS options. */
export type UnaryTarget = { socketPath: string } | { authority: string; tls: SecureClientSessionOptions };

/** A stream id close to HTTP/2's 2^31 limit: the next call opens a fresh session. */
const STREAM_ID_ROTATE = 2 ** 30;

export class UnaryChannel {
  private session: ClientHttp2Session | undefined;
  private closed = false;

  constructor(private readonly target: UnaryTarget) {}

  /**
   * One unary call: `body` is the encoded request message; resolves with the encoded response
   * message, rejects with a CallError (status, details, the trailers as metadata).
   */
  call(
    path: string,
    body: Uint8Array,
    headers: Record<string, string>,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      let session: ClientHttp2Session;
      try {
        session = this.open();
      } catch (err) {
        reject(callError(GrpcStatus.UNAVAILABLE, (err as Error).message));
        return;
      }
      const frame = Buffer.allocUnsafe(5 + body.length);
      frame[0] = 0;
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      const req = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${Math.max(1, Math.ceil(timeoutMs))}m`,
        ...headers,
      });
      const chunks: Buffer[] = [];
      let trailers: IncomingHttpHeaders | undefined;
      let httpStatus = 0;
      let timedOut = false;
      req.on('response', (h) => {
        httpStatus = Number(h[':status']);
        if (h['grpc-status'] !== undefined) trailers = h; // trailers-only answer
      });
      req.on('trailers', (h: IncomingHttpHeaders) => {
        trailers = h;
      });
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('error', () => undefined); // settled on 'close'
      req.setTimeout(timeoutMs, () => {
        timedOut = true;
        req.close(http2.constants.NGHTTP2_CANCEL);
      });
      req.on('close', () => {
        if (timedOut) return reject(callError(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded'));
        if (!trailers) {
          const why = httpStatus && httpStatus !== 200 ? `HTTP ${httpStatus}` : 'the connection closed';
          return reject(callError(GrpcStatus.UNAVAILABLE, why));
        }
        const status = Number(trailers['grpc-status']);
        if (status !== GrpcStatus.OK) return reject(callError(status, decodeMessage(trailers), trailers));
        const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (data.length < 5 || data[0] !== 0 || data.readUInt32BE(1) !== data.length - 5)
          return reject(callError(GrpcStatus.INTERNAL, 'the runner answered a malformed message'));
        resolve(data.subarray(5));
      });
      req.end(frame);
    });
  }

  /** Closes the session; calls in flight end with UNAVAILABLE. */
  close(): void {
    this.closed = true;
    this.session?.destroy();
    this.session = undefined;
  }

  private open(): ClientHttp2Session {
    if (this.closed) throw new Error('the channel is closed');
    const current = this.session;
    if (current && !current.closed && !current.destroyed) {
      if ((current.state.nextStreamID ?? 0) < STREAM_ID_ROTATE) return current;
      current.close(); // in-flight calls finish on it
    }
    const { target } = this;
    const session =
      'socketPath' in target
        ? http2.connect('http://localhost', { createConnection: () => connect(target.socketPath) })
        : http2.connect(target.authority, target.tls);
    session.on('error', () => undefined); // each call sees its stream close
    const forget = () => {
      if (this.session === session) this.session = undefined;
    };
    session.once('close', forget);
    session.once('goaway', forget);
    this.session = session;
    return session;
  }
}

function decodeMessage(trailers: IncomingHttpHeaders): string {
  const raw = trailers['grpc-message'];
  if (typeof raw !== 'string') return '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** A failed call: its gRPC status, message and trailers (read by fromServiceError). */
export class UnaryCallError extends Error implements CallError {
  constructor(
    readonly code: number,
    readonly details: string,
    private readonly trailers?: IncomingHttpHeaders,
  ) {
    super(`${code} ${details}`);
  }

  readonly metadata = {
    get: (key: string): Array<string | Buffer> => {
      const v = this.trailers?.[key];
      if (v === undefined) return [];
      const values = Array.isArray(v) ? v : [v];
      return key.endsWith('-bin') ? values.map((x) => Buffer.from(x, 'base64')) : values;
    },
  };
}

function callError(code: number, details: string, trailers?: IncomingHttpHeaders): UnaryCallError {
  return new UnaryCallError(code, details, trailers);
}
