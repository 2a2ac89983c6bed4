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
import type { CallerSession, ProducerRunnerApi } from '../types.js';

/** prism.data.v1.Producer over a resolver. */
export function producerService(
  resolve: RunnerResolver<ProducerRunnerApi>,
  observe?: UnaryObserver,
): UntypedServiceImplementation {
  const publishOne = async (
    runner: ProducerRunnerApi,
    req: PublishRequest,
    session: CallerSession,
    traceparent?: string,
  ) => {
    const result = await runner.publish(
      {
        topic: req.topic || undefined,
        payload: req.payload,
        contentType: req.contentType || undefined,
        correlationId: req.correlationId || undefined,
        headers: req.headers,
        messageId: req.messageId || undefined,
        trace: traceparent ? create(TraceContextSchema, { traceparent }) : undefined,
      },
      session,
    );
    return create(PublishResponseSchema, {
      messageId: result.messageId,
      publishedAtMs: BigInt(result.publishedAtMs),
      duplicate: result.duplicate,
    });
  };
  const unary = unaryCalls(resolve, observe);
  const traceparentOf = (metadata: Metadata) => metadata.get('traceparent')[0]?.toString();
  return {
    publish: unary<PublishRequest, PublishResponse>('Publish', (runner, req, { session, metadata }) =>
      publishOne(runner, req, session, traceparentOf(metadata)),
    ),
    publishBatch: unary<PublishBatchRequest, unknown>(
      'PublishBatch',
      async (runner, req, { session, metadata }) =>
        create(PublishBatchResponseSchema, {
          results: await Promise.all(
            req.messages.map((m) => publishOne(runner, m, session, traceparentOf(metadata))),
          ),
        }),
    ),
  };
}
