/**
 * The client side of prism.data.v1.Producer/PublishUpload: a head, then the payload in data
 * frames of at most UPLOAD_FRAME_BYTES, each written once the call can take it (gRPC flow
 * control), so neither side holds the payload in one message.
 */
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import type { ClientWritableStream, Metadata, ServiceError } from '@grpc/grpc-js';
import * as msg from '../gen/prism/data/v1/messaging_pb.js';
import type { PrismError } from '../errors.js';
import type { AnyClient } from './proxy-call.js';

/**
 * Bytes per data frame: large enough that framing costs little, small enough that the frames the
 * proxy buffers per call (grpc-js reads up to 16 ahead) stay a few MiB.
 */
export const UPLOAD_FRAME_BYTES = 256 * 1024;

/** The head of an upload; `size` and `sha256` are filled in from a Uint8Array source. */
export interface UploadHead {
  topic?: string;
  contentType?: string;
  correlationId?: string;
  headers?: Record<string, string>;
  messageId?: string;
  /** The payload's size in bytes: required for a stream source. */
  size?: number | bigint;
  /** Lowercase hex SHA-256 of the payload, when known (computed for a Uint8Array source). */
  sha256?: string;
}

/** A payload source: bytes in memory, or chunks of any size read once (a file stream). */
export type UploadSource = Uint8Array | AsyncIterable<Uint8Array>;

/**
 * Publishes `source` as one message through PublishUpload. A Uint8Array is sent with its size and
 * SHA-256 (so a claim-checked payload is stored once, under its final key); an iterable needs
 * `head.size` (and may carry `head.sha256`).
 */
export async function publishUpload(
  client: AnyClient,
  metadata: Metadata,
  head: UploadHead,
  source: UploadSource,
  toError: (err: ServiceError) => PrismError,
): Promise<msg.PublishUploadResponse> {
  let init = head;
  if (source instanceof Uint8Array) {
    init = {
      ...head,
      size: source.byteLength,
      sha256: head.sha256 || createHash('sha256').update(source).digest('hex'),
    };
  } else if (head.size === undefined) {
    throw new TypeError('publishUpload: head.size is required when the payload is a stream');
  }
  let call!: ClientWritableStream<msg.PublishUploadRequest>;
  const answered = new Promise<msg.PublishUploadResponse>((resolve, reject) => {
    call = client.publishUpload!(metadata, (err: ServiceError | null, res: msg.PublishUploadResponse) =>
      err ? reject(toError(err)) : resolve(res),
    ) as ClientWritableStream<msg.PublishUploadRequest>;
  });
  // The proxy may answer (a refusal) before it read everything: stop writing then.
  let over = false;
  answered.then(
    () => (over = true),
    () => (over = true),
  );
  const write = async (frame: msg.PublishUploadRequest['frame']) => {
    if (over) return;
    if (!call.write(create(msg.PublishUploadRequestSchema, { frame }))) {
      await Promise.race([once(call, 'drain'), answered.catch(() => undefined)]);
    }
  };
  try {
    await write({
      case: 'head',
      value: create(msg.PublishUploadHeadSchema, { ...init, size: BigInt(init.size ?? 0) }),
    });
    for await (const chunk of frames(source)) {
      if (over) break;
      await write({ case: 'data', value: chunk });
    }
    call.end();
  } catch (err) {
    call.cancel();
    throw err;
  }
  return answered;
}

/** The source cut into frames of at most UPLOAD_FRAME_BYTES (views, not copies). */
async function* frames(source: UploadSource): AsyncGenerator<Uint8Array> {
  const pieces = source instanceof Uint8Array ? [source] : source;
  for await (const piece of pieces) {
    for (let offset = 0; offset < piece.byteLength; offset += UPLOAD_FRAME_BYTES) {
      yield piece.subarray(offset, Math.min(piece.byteLength, offset + UPLOAD_FRAME_BYTES));
    }
  }
}
