/**
 * Unary calls to a runner process as frames on one call stream (src/transport/call-frames.ts)
 * instead of one HTTP/2 stream each: the same `unary()` as GrpcHttp2Channel, with the same
 * statuses, details and metadata in its failures, at a fraction of the CPU per call.
 *
 * The stream is opened on the first call and again after it ended (the runner process restarted,
 * the session went away): calls in flight when it ends fail UNAVAILABLE 'Connection dropped', as
 * on their own streams. A call past its timeout fails DEADLINE_EXCEEDED here and is cancelled at
 * the runner. A runner that does not know the call stream (UNIMPLEMENTED: an older `prismctl
 * runner serve`) gets every call on its own stream from then on, the ones waiting included.
 */
import type { ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import {
  CALLS_PATH,
  decodeResult,
  encodeCall,
  encodeCancel,
  headersOf,
  MessageReader,
} from '../transport/call-frames.js';
import { GrpcStatus, type CallError } from '../transport/status-codes.js';
import { callError, deadlineText, metadataOf, type GrpcHttp2Channel } from './grpc-http2.js';

interface Waiting {
  resolve: (message: Uint8Array) => void;
  reject: (err: Error & CallError) => void;
  timer: NodeJS.Timeout;
  /** The same call on its own stream (when the runner has no call stream). */
  alone: () => void;
}

/** One open call stream and the calls waiting on it. */
interface Open {
  stream: ClientHttp2Stream;
  waiting: Map<number, Waiting>;
  /** The status the runner ended the stream with, when it sent one. */
  status?: { code: number; details: string };
  /** The runner finished its side (it drains): new calls go to a new stream. */
  finished: boolean;
}

export class CallStreamChannel {
  private open: Open | undefined;
  private nextId = 1;
  private alone = false;

  constructor(private readonly channel: GrpcHttp2Channel) {}

  unary(
    path: string,
    message: Uint8Array,
    metadata: Record<string, string>,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    if (this.alone) return this.channel.unary(path, message, metadata, timeoutMs);
    return new Promise<Uint8Array>((resolve, reject) => {
      let open: Open;
      try {
        open = this.stream();
      } catch (err) {
        reject(err as Error & CallError);
        return;
      }
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      const timer = setTimeout(() => {
        if (open.waiting.get(id) !== waiting) return;
        open.waiting.delete(id);
        if (!open.stream.closed) open.stream.write(encodeCancel(id));
        reject(callError(GrpcStatus.DEADLINE_EXCEEDED, deadlineText(timeoutMs)));
      }, timeoutMs);
      const waiting: Waiting = {
        resolve,
        reject,
        timer,
        alone: () => {
          clearTimeout(timer);
          this.channel.unary(path, message, metadata, timeoutMs).then(resolve, reject);
        },
      };
      open.waiting.set(id, waiting);
      open.stream.write(encodeCall(id, timeoutMs, path, Object.entries(metadata), message));
    });
  }

  close(): void {
    this.open?.stream.close();
    this.open = undefined;
    this.channel.close();
  }

  private stream(): Open {
    const current = this.open;
    if (current && !current.finished && !current.stream.closed && !current.stream.destroyed) return current;
    const stream = this.channel.openStream(CALLS_PATH);
    const open: Open = { stream, waiting: new Map(), finished: false };
    this.open = open;
    const reader = new MessageReader(
      Number.MAX_SAFE_INTEGER,
      (frame) => this.result(open, frame),
      () => undefined,
    );
    const status = (headers: IncomingHttpHeaders) => {
      if (headers['grpc-status'] === undefined) return;
      const message = headers['grpc-message'];
      const details = decodeURIComponentSafe(Array.isArray(message) ? message.join(',') : (message ?? ''));
      open.status = { code: Number(headers['grpc-status']), details };
    };
    stream.on('response', status);
    stream.on('trailers', status);
    stream.on('data', (chunk: Buffer) => reader.push(chunk));
    stream.on('end', () => {
      // The runner answers nothing more here; ending our side closes the stream (see ended()).
      open.finished = true;
      stream.end();
    });
    stream.on('error', () => undefined); // the close that follows tells the waiting calls
    stream.on('close', () => this.ended(open));
    return open;
  }

  private result(open: Open, bytes: Buffer): void {
    let frame;
    try {
      frame = decodeResult(bytes);
    } catch {
      open.stream.close(); // not a runner that speaks this protocol; the waiting calls fail below
      return;
    }
    const waiting = open.waiting.get(frame.id);
    if (!waiting) return; // timed out meanwhile
    open.waiting.delete(frame.id);
    clearTimeout(waiting.timer);
    if (frame.code === GrpcStatus.OK) return waiting.resolve(frame.body);
    waiting.reject(callError(frame.code, frame.body.toString('utf8'), metadataOf(headersOf(frame.metadata))));
  }

  private ended(open: Open): void {
    if (this.open === open) this.open = undefined;
    if (open.status?.code === GrpcStatus.UNIMPLEMENTED && open.waiting.size > 0) this.alone = true;
    const waiting = [...open.waiting.values()];
    open.waiting.clear();
    for (const w of waiting) {
      if (this.alone) {
        w.alone();
        continue;
      }
      clearTimeout(w.timer);
      const { status } = open;
      w.reject(
        status && status.code !== GrpcStatus.OK
          ? callError(status.code, status.details)
          : callError(GrpcStatus.UNAVAILABLE, 'Connection dropped'),
      );
    }
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
