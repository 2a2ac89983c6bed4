import { create } from '@bufbuild/protobuf';
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { TraceContextSchema } from '../../gen/prism/data/v1/envelope_pb.js';
import { PublishBatchResponseSchema, PublishResponseSchema } from '../../gen/prism/data/v1/messaging_pb.js';
import type {
  PublishBatchRequest,
  PublishRequest,
  PublishResponse,
} from '../../gen/prism/data/v1/messaging_pb.js';
import { toServiceError } from '../../client/grpc-status.js';
import type { RunnerResolver } from '../call-context.js';
import type { UnaryObserver } from '../keyvalue/service.js';
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
  const unary =
    <Req, Res>(
      method: string,
      handler: (
        runner: ProducerRunnerApi,
        req: Req,
        session: CallerSession,
        traceparent?: string,
      ) => Promise<Res>,
    ) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const traceparent = call.metadata.get('traceparent')[0]?.toString();
      const work = resolve(call.metadata, method).then(({ runner, session }) =>
        handler(runner, call.request, session, traceparent),
      );
      observe?.(method, work, call.metadata);
      work.then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err) as never, null),
      );
    };
  return {
    publish: unary<PublishRequest, PublishResponse>('Publish', publishOne),
    publishBatch: unary<PublishBatchRequest, unknown>(
      'PublishBatch',
      async (runner, req, session, traceparent) =>
        create(PublishBatchResponseSchema, {
          results: await Promise.all(req.messages.map((m) => publishOne(runner, m, session, traceparent))),
        }),
    ),
  };
}
