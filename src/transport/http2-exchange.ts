/**
 * What every gRPC call served on node:http2 (grpc-http2-server.ts, client-stream-exchange.ts) does
 * alike: read its deadline, read its request messages with grpc-js's refusals, hand the caller's
 * headers to the handler as metadata, and answer with one message or a status.
 */
import { Metadata, status as Status } from '@grpc/grpc-js';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { MessageReader } from './call-frames.js';
import type { Answer, Invocation } from './unary-invocation.js';

/** A trailers-only response: the status (and metadata, such as an error's) without a message. */
export function refuse(stream: ServerHttp2Stream, code: number, details: string, metadata?: Metadata): void {
  stream.respond(
    {
      ...metadata?.toHttp2Headers(),
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': encodeURI(details),
    },
    { endStream: true },
  );
}

const DEADLINE = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** A call's timeout in ms from its grpc-timeout header: undefined without one, null when malformed. */
export function timeoutMs(header: string | string[] | undefined): number | undefined | null {
  if (typeof header !== 'string') return undefined;
  const match = DEADLINE.exec(header);
  return match ? Math.max(1, Number(match[1]) * UNIT_MS[match[2]!]!) : null;
}

/**
 * Starts the invocation's deadline from the call's grpc-timeout header; returns the details of the
 * INTERNAL status a malformed header gets (as grpc-js answers it), undefined otherwise.
 */
export function startDeadline(headers: IncomingHttpHeaders, invocation: Invocation): string | undefined {
  const timeout = headers['grpc-timeout'];
  const ms = timeoutMs(timeout);
  if (ms === null) return `Invalid grpc-timeout value "${String(timeout)}"`;
  invocation.deadlineIn(ms);
  return undefined;
}

/** Reads a call's request messages as grpc-js does: a compressed or oversized one is refused with its status. */
export function requestReader(
  max: number,
  received: (message: Buffer) => void,
  refuse: (code: Status, details: string) => void,
): MessageReader {
  return new MessageReader(
    max,
    (message, compressed) => {
      if (compressed) refuse(Status.UNIMPLEMENTED, 'Received a compressed message; this server takes none');
      else received(message);
    },
    (_head, size) =>
      refuse(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${size} vs ${max})`),
  );
}

/** What an exchange does with its call's stream until the stream closes. */
export interface StreamListeners {
  data: (chunk: Buffer) => void;
  end: () => void;
  close: () => void;
  drain?: () => void;
}

/**
 * Listens on a call's stream, and lets go of the listeners once it has closed. Node keeps a closed
 * stream reachable until the next full collection (its native handle), so listeners left on it
 * kept everything their closures reach (the call, its request and answer) alive through the
 * young-generation collections it should have died in: promoted, 1.3 KB of every unary call
 * (bench/RESULTS.md, session 16).
 */
export function listenUntilClose(stream: ServerHttp2Stream, listeners: StreamListeners): void {
  const { data, end, drain } = listeners;
  const close = () => {
    listeners.close();
    stream.off('data', data).off('end', end).off('close', close);
    if (drain) stream.off('drain', drain);
  };
  stream.on('data', data).on('end', end).on('close', close);
  if (drain) stream.on('drain', drain);
}

/** Headers grpc-js's server leaves out of the metadata a handler sees. */
const NOT_METADATA = ['grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'te', 'content-type'];

/** The caller's metadata, as grpc-js hands it to a handler (`-bin` values decoded). */
export function callMetadata(headers: IncomingHttpHeaders): Metadata {
  const metadata = Metadata.fromHttp2Headers(headers);
  for (const key of NOT_METADATA) metadata.remove(key);
  return metadata;
}

/** A call's one answer on its own HTTP/2 stream: the message and OK, or a trailers-only status. */
export class StreamAnswer implements Answer {
  constructor(private readonly stream: ServerHttp2Stream) {}

  ok(message: Buffer, headers: Metadata | undefined, trailer: Metadata | undefined): void {
    const { stream } = this;
    if (stream.closed || stream.destroyed) return;
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    stream.respond(
      { ...headers?.toHttp2Headers(), ':status': 200, 'content-type': 'application/grpc' },
      { waitForTrailers: true },
    );
    stream.once('wantTrailers', () =>
      stream.sendTrailers({ ...trailer?.toHttp2Headers(), 'grpc-status': '0', 'grpc-message': 'OK' }),
    );
    stream.end(frame);
  }

  fail(code: number, details: string, metadata: Metadata | undefined): void {
    const { stream } = this;
    if (stream.closed || stream.destroyed) return;
    refuse(stream, code, details, metadata);
  }
}
