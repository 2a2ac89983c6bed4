/**
 * The call stream between a proxy and its runner processes: many unary calls on one HTTP/2 stream.
 * A unary call on its own HTTP/2 stream cost Node ~70–100 µs of CPU on each side here (stream
 * set-up, header blocks, trailers, stream teardown); a call as one frame on a stream that stays
 * open cost ~14 in the proxy and ~18 in the runner (64 calls in flight over a Unix socket, a
 * trivial handler; bench/proxy/launched.js measures the whole path).
 *
 * The stream is the bidirectional gRPC method CALLS_PATH; each gRPC message on it is one frame
 * (integers big-endian, strings as their bytes: paths and metadata are ASCII, details UTF-8):
 *
 *   call     u32 id, u8 1, u32 timeout ms (0: none), u16 path length, path,
 *            u16 metadata count, per entry: u16 key length, key, u32 value length, value,
 *            then the request message to the end of the frame
 *   cancel   u32 id, u8 2
 *   result   u32 id, u8 gRPC status, u16 metadata count, entries as above,
 *            status 0: the response message to the end; else: the status details
 *
 * Metadata entries are HTTP/2 header fields as a unary call would carry them (`-bin` values in
 * base64). Ids are the caller's, unique among its calls in flight on the stream; results come in
 * any order. A frame larger than the server's message limit gets RESOURCE_EXHAUSTED for its id.
 * A server that does not know CALLS_PATH answers UNIMPLEMENTED: the caller then makes each call on
 * its own stream, as before.
 */
import type { IncomingHttpHeaders } from 'node:http2';

export const CALLS_PATH = '/prism.runner.v1.RunnerCalls/Calls';

export const CALL = 1;
export const CANCEL = 2;

export type Entries = ReadonlyArray<readonly [string, string]>;

/** Metadata entries as the header fields of an HTTP/2 request or response (repeated keys as arrays). */
export function headersOf(entries: Entries): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (const [key, value] of entries) {
    const seen = headers[key];
    headers[key] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
  }
  return headers;
}

function entriesSize(entries: Entries): number {
  let size = 2;
  for (const [k, v] of entries)
    size += 2 + Buffer.byteLength(k, 'latin1') + 4 + Buffer.byteLength(v, 'latin1');
  return size;
}

function writeEntries(buf: Buffer, at: number, entries: Entries): number {
  buf.writeUInt16BE(entries.length, at);
  at += 2;
  for (const [k, v] of entries) {
    const kl = buf.write(k, at + 2, 'latin1');
    buf.writeUInt16BE(kl, at);
    at += 2 + kl;
    const vl = buf.write(v, at + 4, 'latin1');
    buf.writeUInt32BE(vl, at);
    at += 4 + vl;
  }
  return at;
}

function readEntries(frame: Buffer, at: number): [Array<[string, string]>, number] {
  const count = frame.readUInt16BE(at);
  at += 2;
  const out: Array<[string, string]> = [];
  for (let i = 0; i < count; i++) {
    const kl = frame.readUInt16BE(at);
    const key = frame.toString('latin1', at + 2, at + 2 + kl);
    at += 2 + kl;
    const vl = frame.readUInt32BE(at);
    out.push([key, frame.toString('latin1', at + 4, at + 4 + vl)]);
    at += 4 + vl;
  }
  return [out, at];
}

/** A gRPC message (5-byte prefix) holding one frame of `size` bytes; the frame starts at 5. */
function message(size: number): Buffer {
  const buf = Buffer.allocUnsafe(5 + size);
  buf[0] = 0;
  buf.writeUInt32BE(size, 1);
  return buf;
}

export function encodeCall(
  id: number,
  timeoutMs: number,
  path: string,
  metadata: Entries,
  request: Uint8Array,
): Buffer {
  const pathLength = Buffer.byteLength(path, 'latin1');
  const buf = message(4 + 1 + 4 + 2 + pathLength + entriesSize(metadata) + request.length);
  let at = 5;
  buf.writeUInt32BE(id, at);
  buf[at + 4] = CALL;
  buf.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.ceil(timeoutMs))), at + 5);
  buf.writeUInt16BE(pathLength, at + 9);
  at += 11;
  at += buf.write(path, at, 'latin1');
  at = writeEntries(buf, at, metadata);
  buf.set(request, at);
  return buf;
}

export function encodeCancel(id: number): Buffer {
  const buf = message(5);
  buf.writeUInt32BE(id, 5);
  buf[9] = CANCEL;
  return buf;
}

export function encodeResult(id: number, code: number, metadata: Entries, body: Uint8Array | string): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const buf = message(4 + 1 + entriesSize(metadata) + bytes.length);
  buf.writeUInt32BE(id, 5);
  buf[9] = code;
  const at = writeEntries(buf, 10, metadata);
  buf.set(bytes, at);
  return buf;
}

export interface CallFrame {
  id: number;
  kind: number;
  timeoutMs: number;
  path: string;
  metadata: Array<[string, string]>;
  request: Buffer;
}

/** Decodes a call or cancel frame (the gRPC message's payload); throws RangeError when cut short. */
export function decodeCall(frame: Buffer): CallFrame {
  const id = frame.readUInt32BE(0);
  const kind = frame[4]!;
  if (kind !== CALL) return { id, kind, timeoutMs: 0, path: '', metadata: [], request: frame.subarray(0, 0) };
  const timeoutMs = frame.readUInt32BE(5);
  const pathLength = frame.readUInt16BE(9);
  const path = frame.toString('latin1', 11, 11 + pathLength);
  const [metadata, at] = readEntries(frame, 11 + pathLength);
  if (at > frame.length) throw new RangeError('call frame cut short');
  return { id, kind, timeoutMs, path, metadata, request: frame.subarray(at) };
}

export interface ResultFrame {
  id: number;
  code: number;
  metadata: Array<[string, string]>;
  body: Buffer;
}

export function decodeResult(frame: Buffer): ResultFrame {
  const id = frame.readUInt32BE(0);
  const code = frame[4]!;
  const [metadata, at] = readEntries(frame, 5);
  if (at > frame.length) throw new RangeError('result frame cut short');
  return { id, code, metadata, body: frame.subarray(at) };
}

/**
 * Splits the bytes of a gRPC stream into messages. A message above `max` bytes is not buffered:
 * `oversize` gets its first bytes (at least the 4 of a frame id, when it has them) and its size.
 */
export class MessageReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the pending ones must reach before they are worth joining. */
  private need = 0;
  private skip = 0;

  constructor(
    private readonly max: number,
    private readonly onMessage: (message: Buffer, compressed: boolean) => void,
    private readonly oversize: (head: Buffer, size: number) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length);
      this.skip -= n;
      chunk = chunk.subarray(n);
      if (chunk.length === 0) return;
    }
    let buf = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.need) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.need = 5;
    while (buf.length >= 5) {
      const size = buf.readUInt32BE(1);
      if (size > this.max) {
        this.need = 9;
        if (buf.length < 9) break; // wait for the frame id
        this.oversize(buf.subarray(5, 9), size);
        const have = buf.length - 5;
        if (have < size) {
          this.skip = size - have;
          return;
        }
        buf = buf.subarray(5 + size);
        this.need = 5;
        continue;
      }
      this.need = 5 + size;
      if (buf.length < 5 + size) break;
      this.need = 5;
      this.onMessage(buf.subarray(5, 5 + size), buf[0] !== 0);
      buf = buf.subarray(5 + size);
    }
    if (buf.length > 0) {
      this.pending = [buf];
      this.pendingBytes = buf.length;
    }
  }
}
