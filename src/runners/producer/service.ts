import { create } from '@bufbuild/protobuf';
import type { Metadata, UntypedServiceImplementation } from '@grpc/grpc-js';
import { TraceContextSchema } from '../../gen/prism/data/v1/envelope_pb.js';
import { PublishBatchResponseSchema, PublishResponseSchema } from '../../gen/prism/data/v1/messaging_pb.js';
import type {
  PublishBatchRequest,
  PublishRequest,
  PublishResponse,
} from '../../gen/prism/data/v1/messaging_pb.js';
import { unaryCalls, type RunnerResolver, type UnaryObserver } from '../call-context.js';
import type { ProducerRunnerApi, PublishInput, PublishResult } from '../types.js';
import { newPublishLane } from './runner.js';
import { PublishStreams, publishStreamHandler } from './stream.js';

/**
 * prism.data.v1.Producer over a resolver. `streams` holds the open PublishStreams, so a server
 * that drains can end them.
 */
export function producerService(
  resolve: RunnerResolver<ProducerRunnerApi>,
  observe?: UnaryObserver,
  streams: PublishStreams = new PublishStreams(),
): UntypedServiceImplementation {
  const inputOf = (req: PublishRequest, traceparent?: string): PublishInput => ({
    topic: req.topic || undefined,
    payload: req.payload,
    contentType: req.contentType || undefined,
    correlationId: req.correlationId || undefined,
    headers: req.headers,
    messageId: req.messageId || undefined,
    trace: traceparent ? create(TraceContextSchema, { traceparent }) : undefined,
  });
  const responseOf = (result: PublishResult): PublishResponse =>
    create(PublishResponseSchema, {
      messageId: result.messageId,
      publishedAtMs: BigInt(result.publishedAtMs),
      duplicate: result.duplicate,
    });
  const unary = unaryCalls(resolve, observe);
  const traceparentOf = (metadata: Metadata) => metadata.get('traceparent')[0]?.toString();
  return {
    publish: unary<PublishRequest, PublishResponse>('Publish', async (runner, req, { session, metadata }) =>
      responseOf(await runner.publish(inputOf(req, traceparentOf(metadata)), session)),
    ),
    publishBatch: unary<PublishBatchRequest, unknown>(
      'PublishBatch',
      async (runner, req, { session, metadata }) => {
        const traceparent = traceparentOf(metadata);
        const results = await runner.publishBatch(
          req.messages.map((m) => inputOf(m, traceparent)),
          session,
        );
        return create(PublishBatchResponseSchema, { results: results.map(responseOf) });
      },
    ),
    publishStream: publishStreamHandler({
      resolve,
      inputOf,
      responseOf,
      newLane: () => newPublishLane(),
      streams,
      observe,
    }),
  };
}
