/**
 * A GetObject over a plain-HTTP connection whose socket reads the body straight into the
 * caller's buffer (`net.Socket`'s `onread`), for the s3 driver's reads of large objects. A
 * connection that delivered a whole body is kept for the next GET: a new one costs 0.5–0.8 ms on
 * loopback, a twentieth of a 1 MiB claim check's delivery.
 *
 * Why not the AWS SDK's own request: its `node:http` response hands the body over in freshly
 * allocated chunks of 64 KiB that a reader then copies into place. Measured in one Node process
 * reading a 100 MiB object from SeaweedFS on loopback: 240–300 ms of CPU through the SDK,
 * 115–150 ms through undici's `dispatch`, 37–47 ms with the socket filling the destination.
 *
 * Only the plain case is handled here: an `http:` endpoint answering 200 or 206 with a
 * Content-Length and neither a transfer nor a content encoding. For anything else `directGet`
 * resolves `undefined` before reading a byte of body, and the driver asks again through the SDK,
 * which stays the one place that reads S3's errors, retries and speaks TLS.
 */
import { connect, type Socket } from 'node:net';
import type { SignatureV4 } from '@smithy/signature-v4';

/** A response head larger than this is not S3's (its user metadata is at most 2 KiB). */
const HEAD_LIMIT = 64 * 1024;
/** The read after the head, and any read past the body's end, land in a spare buffer this size. */
const SPARE_BYTES = 64 * 1024;
/** An idle connection is closed after this long, before a server's own idle timeout. */
const IDLE_CONNECTION_MS = 4_000;
/** The SHA-256 of an empty body, which a GET signs. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface DirectGetRequest {
  /** `http://host:port`, the store's endpoint. */
  endpoint: URL;
  /** The path with the bucket, each segment already URI-encoded: `/<bucket>/<key>`. */
  path: string;
  /** A `Range` header's value, when only part of the object is wanted. */
  range?: string;
  signer: SignatureV4;
  /** The kept-alive connections to `endpoint` this GET may reuse, and gives its own back to. */
  connections: DirectGetConnections;
  connectTimeoutMs: number;
  /** The longest the connection may stay silent once connected. */
  idleTimeoutMs: number;
}

/** An answered GetObject whose body has not been read yet (the socket is paused). */
export interface DirectGet {
  /** The body's length (Content-Length). */
  readonly size: number;
  /** The response headers, names in lower case. */
  readonly headers: ReadonlyMap<string, string>;
  /**
   * Reads the body into `target` (exactly `size` bytes), calling `onBytes` with each newly filled
   * view in order. Rejects when the connection fails, goes silent or breaks off before the end,
   * or sends more than `size`; the connection is closed then, and kept for the next GET after a
   * whole body.
   */
  readInto(target: Uint8Array, onBytes?: (view: Uint8Array) => void): Promise<void>;
  /** Closes the connection without reading the body. */
  release(): void;
}

/**
 * Idle connections to one store, reused newest first; one left idle IDLE_CONNECTION_MS is closed
 * (before a server's own idle timeout, which would race a request sent on it).
 */
export class DirectGetConnections {
  private readonly idle = new Set<Connection>();

  /** An idle connection, else undefined. */
  take(): Connection | undefined {
    const newest = [...this.idle].at(-1);
    if (newest !== undefined) this.idle.delete(newest);
    return newest;
  }

  give(connection: Connection): void {
    connection.socket.setTimeout(IDLE_CONNECTION_MS);
    this.idle.add(connection);
  }

  forget(connection: Connection): void {
    this.idle.delete(connection);
  }

  /** Closes every idle connection. */
  destroy(): void {
    for (const connection of this.idle) connection.socket.destroy();
    this.idle.clear();
  }
}

/**
 * Signs and sends the GET, on an idle connection when there is one (asked again on a new one when
 * that fails before an answer: the server may have closed it meanwhile); resolves `undefined`
 * when the answer is not the plain case, or there is none.
 */
export async function directGet(request: DirectGetRequest): Promise<DirectGet | undefined> {
  const { endpoint } = request;
  if (endpoint.protocol !== 'http:') return undefined;
  const port = Number(endpoint.port || 80);
  const signed = await request.signer.sign({
    method: 'GET',
    protocol: 'http:',
    hostname: endpoint.hostname,
    port,
    path: request.path,
    query: {},
    headers: {
      host: endpoint.host,
      'x-amz-content-sha256': EMPTY_SHA256,
      ...(request.range !== undefined ? { range: request.range } : {}),
    },
  });
  const lines = [`GET ${request.path} HTTP/1.1`];
  for (const [name, value] of Object.entries(signed.headers)) lines.push(`${name}: ${value}`);
  const text = `${lines.join('\r\n')}\r\n\r\n`;
  const reused = request.connections.take();
  if (reused !== undefined) {
    const answer = await new Exchange(reused, text, request).answered.catch((err: unknown) => err as Error);
    if (!(answer instanceof Error)) return answer;
  }
  // URL keeps an IPv6 literal's brackets in `hostname`; a socket wants the bare address.
  const host = endpoint.hostname.replace(/^\[(.*)\]$/, '$1');
  const fresh = new Connection(host, port, request);
  return new Exchange(fresh, text, request).answered.catch(() => undefined);
}

interface Head {
  status: number;
  headers: Map<string, string>;
}

/** One socket to the store; its reads go to the exchange using it. */
class Connection {
  readonly socket: Socket;
  exchange: Exchange | undefined;
  private readonly spare = Buffer.allocUnsafe(SPARE_BYTES);

  constructor(host: string, port: number, request: DirectGetRequest) {
    this.socket = connect({
      host,
      port,
      onread: {
        buffer: () => this.exchange?.nextBuffer() ?? this.spare,
        callback: (n: number, buffer: Uint8Array) => {
          if (this.exchange !== undefined) return this.exchange.received(n, buffer);
          // Bytes nobody asked for: the connection is not in a known state any more.
          this.socket.destroy();
          return false;
        },
      },
    });
    this.socket.setNoDelay(true);
    this.socket.setTimeout(request.connectTimeoutMs);
    this.socket.on('timeout', () => {
      if (this.exchange !== undefined) this.exchange.timedOut();
      else this.socket.destroy();
    });
    this.socket.on('error', (err) => this.exchange?.fail(err));
    this.socket.on('close', () => {
      request.connections.forget(this);
      this.exchange?.fail(new Error(`${request.endpoint.host} closed the connection`));
    });
  }

  /** Where a read lands when the exchange has no place for it. */
  get spareBuffer(): Buffer {
    return this.spare;
  }
}

/** One request and its response on a connection: the head first, then the body on demand. */
class Exchange implements DirectGet {
  readonly answered: Promise<DirectGet | undefined>;
  size = 0;
  headers: ReadonlyMap<string, string> = new Map();
  private readonly socket: Socket;
  private readonly head = Buffer.allocUnsafe(HEAD_LIMIT);
  private headUsed = 0;
  /** Body bytes that arrived with the head. */
  private early: Uint8Array = new Uint8Array(0);
  private target: Uint8Array | undefined;
  private filled = 0;
  private onBytes: ((view: Uint8Array) => void) | undefined;
  /** The server will keep the connection open after this response. */
  private keepAlive = false;
  private settleHead: ((head: Head | Error) => void) | undefined;
  private settleBody: ((err?: Error) => void) | undefined;

  constructor(
    private readonly connection: Connection,
    requestText: string,
    private readonly request: DirectGetRequest,
  ) {
    const head = new Promise<Head | Error>((resolve) => (this.settleHead = resolve));
    connection.exchange = this;
    this.socket = connection.socket;
    if (this.socket.connecting) {
      this.socket.once('connect', () => this.socket.setTimeout(request.idleTimeoutMs));
    } else {
      this.socket.setTimeout(request.idleTimeoutMs);
    }
    this.socket.resume();
    this.socket.write(requestText);
    this.answered = head.then((answer) => this.accept(answer));
  }

  private accept(answer: Head | Error): DirectGet | undefined {
    if (answer instanceof Error) throw answer;
    const plain =
      (answer.status === 200 || answer.status === 206) &&
      !answer.headers.has('transfer-encoding') &&
      (answer.headers.get('content-encoding') ?? 'identity') === 'identity' &&
      /^\d+$/.test(answer.headers.get('content-length') ?? '');
    if (!plain) {
      this.release();
      return undefined;
    }
    this.headers = answer.headers;
    this.size = Number(answer.headers.get('content-length'));
    this.keepAlive = !/(^|,)\s*close\s*(,|$)/i.test(answer.headers.get('connection') ?? '');
    return this;
  }

  readInto(target: Uint8Array, onBytes?: (view: Uint8Array) => void): Promise<void> {
    if (target.byteLength !== this.size) {
      this.release();
      return Promise.reject(
        new RangeError(`the body is ${this.size} bytes, the target ${target.byteLength}`),
      );
    }
    if (this.target !== undefined) return Promise.reject(new Error('the body was read already'));
    const done = new Promise<void>((resolve, reject) => {
      this.settleBody = (err) => (err === undefined ? resolve() : reject(err));
    });
    this.target = target;
    this.onBytes = onBytes;
    const early = this.early.subarray(0, Math.min(this.early.byteLength, target.byteLength));
    target.set(early, 0);
    if (this.early.byteLength > target.byteLength) {
      this.fail(new Error(`${this.request.endpoint.host} sent more than the ${this.size} bytes announced`));
    } else {
      this.socket.resume();
      this.filledUpTo(early.byteLength);
    }
    return done;
  }

  release(): void {
    this.settleBody = undefined;
    this.settleHead = undefined;
    this.socket.destroy();
  }

  timedOut(): void {
    const host = this.request.endpoint.host;
    this.fail(
      new Error(
        this.socket.connecting
          ? `no answer from ${host} within ${this.request.connectTimeoutMs} ms`
          : `${host} was silent for ${this.request.idleTimeoutMs} ms`,
      ),
    );
  }

  /**
   * Where the socket's next read lands: the head buffer's rest, else the body's unfilled rest. Node
   * asks right after each read, so the read after the head (which pauses the socket until
   * `readInto`) lands in the connection's spare buffer and is copied; so would anything past the
   * body's end (an error).
   */
  nextBuffer(): Uint8Array {
    if (this.settleHead !== undefined) return this.head.subarray(this.headUsed);
    const target = this.target;
    return target !== undefined && this.filled < target.byteLength
      ? target.subarray(this.filled)
      : this.connection.spareBuffer;
  }

  /** `n` bytes have landed at the start of `buffer`; false pauses the socket. */
  received(n: number, buffer: Uint8Array): boolean {
    const bytes = buffer.subarray(0, n);
    const target = this.target;
    if (target !== undefined) {
      const inPlace = bytes.buffer === target.buffer && bytes.byteOffset === target.byteOffset + this.filled;
      if (!inPlace) {
        if (this.filled + n > target.byteLength) {
          this.fail(
            new Error(`${this.request.endpoint.host} sent more than the ${this.size} bytes announced`),
          );
          return false;
        }
        target.set(bytes, this.filled);
      }
      this.filledUpTo(this.filled + n);
      return true;
    }
    if (this.settleHead === undefined) {
      // The head is parsed and the body not asked for yet: these bytes belong to it.
      this.early = Buffer.concat([this.early, bytes]);
      return false;
    }
    // A new connection's first read was placed before this exchange began: into the spare buffer.
    if (bytes.buffer !== this.head.buffer || bytes.byteOffset !== this.head.byteOffset + this.headUsed) {
      if (this.headUsed + n > HEAD_LIMIT) return this.tooLong();
      this.head.set(bytes, this.headUsed);
    }
    this.headUsed += n;
    const end = this.head.subarray(0, this.headUsed).indexOf('\r\n\r\n');
    if (end < 0) return this.headUsed < HEAD_LIMIT ? true : this.tooLong();
    const head = parseHead(this.head.toString('latin1', 0, end));
    this.early = this.head.subarray(end + 4, this.headUsed);
    const settle = this.settleHead;
    this.settleHead = undefined;
    settle(head ?? new Error('the response head is not HTTP/1.1'));
    return false;
  }

  private tooLong(): false {
    this.fail(new Error(`the response head is longer than ${HEAD_LIMIT} bytes`));
    return false;
  }

  private filledUpTo(filled: number): void {
    const from = this.filled;
    this.filled = filled;
    try {
      if (filled > from) this.onBytes?.(this.target!.subarray(from, filled));
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (filled === this.target!.byteLength) {
      const settle = this.settleBody;
      this.settleBody = undefined;
      // The connection serves the next GET, unless the server ends it: then its FIN is read and
      // the socket closes on it, so the TIME_WAIT lands on the server.
      this.connection.exchange = undefined;
      if (this.keepAlive) this.request.connections.give(this.connection);
      settle?.();
    }
  }

  fail(err: Error): void {
    const head = this.settleHead;
    const body = this.settleBody;
    this.release();
    head?.(err);
    body?.(err);
  }
}

/** The status and headers of an HTTP/1.1 response head (without its blank line). */
function parseHead(text: string): Head | undefined {
  const [statusLine, ...lines] = text.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (match === null) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const before = headers.get(name);
    headers.set(name, before === undefined ? value : `${before}, ${value}`);
  }
  return { status: Number(match[1]), headers };
}
