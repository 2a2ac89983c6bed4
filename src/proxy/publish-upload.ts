/**
 * prism.data.v1.Producer/PublishUpload (the contract is in proto/prism/data/v1/messaging.proto):
 * a payload in pieces. The head is checked (size against --max-payload-size, then the runner's
 * routing, auth and checks) before a data frame is read; the data frames are handed to the runner
 * as an async iterable, read one at a time as it asks for them, so a runner that streams them
 * into the object store holds a bounded number of them and gRPC flow control holds the client
 * back. A runner without `publishUpload` (a runner process) gets the payload gathered, whole.
 */
import { create } from '@bufbuild/protobuf';
import type { Metadata, sendUnaryData, ServerReadableStream } from '@grpc/grpc-js';
import { TraceContextSchema } from '../gen/prism/data/v1/envelope_pb.js';
import {
  PublishUploadResponseSchema,
  type PublishUploadRequest,
  type PublishUploadResponse,
} from '../gen/prism/data/v1/messaging_pb.js';
import { PrismError } from '../errors.js';
import type { RunnerResolver, UnaryObserver } from '../runners/call-context.js';
import { gatherUpload, refuseInlineOver } from '../runners/producer/upload.js';
import type { ProducerRunnerApi, PublishUploadInput } from '../runners/types.js';
import { toServiceError } from '../transport/grpc-status.js';
import { collectYoung } from '../gc.js';

/**
 * Bytes of frames between two young-generation collections (src/gc.ts). (A store that keeps
 * buffers long enough to be promoted, S3's multipart parts, runs the major GCs itself.)
 */
const COLLECT_EVERY_BYTES = 2 * 1024 * 1024;

/** Default of `prismctl proxy serve --max-payload-size`. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

export interface PublishUploadDeps {
  resolve: RunnerResolver<ProducerRunnerApi>;
  /** The largest payload an upload may announce (--max-payload-size). */
  maxPayloadBytes: number;
  /** The proxy's --max-message-size: an upload no claim check takes must fit it. */
  maxInlineBytes: number;
  observe?: UnaryObserver | undefined;
}

export function publishUploadHandler(deps: PublishUploadDeps) {
  return (
    call: ServerReadableStream<PublishUploadRequest, PublishUploadResponse>,
    callback: sendUnaryData<PublishUploadResponse>,
  ) => {
    const work = upload(call, deps);
    deps.observe?.('PublishUpload', work, call.metadata);
    work.then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err) as never, null),
    );
  };
}

async function upload(
  call: ServerReadableStream<PublishUploadRequest, PublishUploadResponse>,
  deps: PublishUploadDeps,
): Promise<PublishUploadResponse> {
  const frames = call[Symbol.asyncIterator]() as AsyncIterator<PublishUploadRequest>;
  const first = await frames.next();
  if (first.done === true || first.value.frame.case !== 'head') {
    throw new PrismError('E_INVALID_ARGUMENT', 'the first PublishUpload request must be head');
  }
  const head = first.value.frame.value;
  if (head.size > BigInt(deps.maxPayloadBytes)) {
    throw new PrismError(
      'E_PAYLOAD_TOO_LARGE',
      `payload is ${head.size} bytes; the proxy's limit is ${deps.maxPayloadBytes} bytes (--max-payload-size)`,
      { hint: `send payloads of at most ${deps.maxPayloadBytes} bytes, or raise --max-payload-size` },
    );
  }
  const size = Number(head.size);
  const { runner, session } = await deps.resolve(call.metadata, 'PublishUpload', {
    request: head,
    peer: call.getPeer(),
  });
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let sinceCollect = 0;
    for (;;) {
      const next = await frames.next();
      if (next.done === true) return;
      const frame = next.value.frame;
      if (frame.case === 'head') {
        throw new PrismError('E_INVALID_ARGUMENT', 'a PublishUpload sends head once, as its first request');
      }
      if (frame.case !== 'data' || frame.value.byteLength === 0) continue;
      sinceCollect += frame.value.byteLength;
      if (sinceCollect >= COLLECT_EVERY_BYTES) {
        sinceCollect = 0;
        collectYoung();
      }
      yield frame.value;
    }
  }
  const traceparent = traceparentOf(call.metadata);
  const input: PublishUploadInput = {
    topic: head.topic || undefined,
    contentType: head.contentType || undefined,
    correlationId: head.correlationId || undefined,
    headers: head.headers,
    messageId: head.messageId || undefined,
    trace: traceparent ? create(TraceContextSchema, { traceparent }) : undefined,
    size,
    sha256: head.sha256 || undefined,
    chunks: chunks(),
    maxInlineBytes: deps.maxInlineBytes,
  };
  let result;
  if (runner.publishUpload !== undefined) {
    result = await runner.publishUpload(input, session);
  } else {
    const { size: _size, sha256, chunks: data, maxInlineBytes: _max, ...rest } = input;
    refuseInlineOver(size, deps.maxInlineBytes);
    result = await runner.publish({ ...rest, payload: await gatherUpload(data, size, sha256) }, session);
  }
  return create(PublishUploadResponseSchema, {
    messageId: result.messageId,
    publishedAtMs: BigInt(result.publishedAtMs),
    duplicate: result.duplicate,
  });
}

function traceparentOf(metadata: Metadata): string | undefined {
  return metadata.get('traceparent')[0]?.toString();
}
