import { create, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import {
  makeGenericClientConstructor,
  Metadata,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { KeyValue } from '../gen/prism/data/v1/keyvalue_pb.js';
import * as kv from '../gen/prism/data/v1/keyvalue_pb.js';
import { Consumer, Producer } from '../gen/prism/data/v1/messaging_pb.js';
import * as msg from '../gen/prism/data/v1/messaging_pb.js';
import { CallerSessions } from '../gen/prism/data/v1/sessions_pb.js';
import * as sessions from '../gen/prism/data/v1/sessions_pb.js';
import { PrismError } from '../errors.js';
import { NAMESPACE_HEADER, PATTERN_HEADER } from '../transport/metadata.js';
import { grpcServiceDefinition } from '../transport/service-definition.js';
import { proxyCallError, unaryCall, type AnyClient } from './proxy-call.js';
import { dialTarget, type ClientTls } from '../transport/dial.js';
import type { DialMode } from '../transport/tls-errors.js';
import { PublishStreamWriter } from './publish-stream.js';
import { publishUpload, type UploadHead, type UploadSource } from './publish-upload.js';
import type { KeyValueCalls } from './kv-client.js';

export { DEFAULT_PROXY_ENDPOINT } from './endpoints.js';

const KeyValueClient = makeGenericClientConstructor(grpcServiceDefinition(KeyValue), 'KeyValue');
const ProducerClient = makeGenericClientConstructor(grpcServiceDefinition(Producer), 'Producer');
const ConsumerClient = makeGenericClientConstructor(grpcServiceDefinition(Consumer), 'Consumer');
const SessionsClient = makeGenericClientConstructor(grpcServiceDefinition(CallerSessions), 'CallerSessions');

/**
 * The consumer channel's HTTP/2 receive window (per stream and per connection). HTTP/2's default
 * of 64 KiB makes the proxy wait for a window update every 64 KiB of a delivery; a 100 MiB
 * claim-checked delivery took about a third longer with it.
 */
const DELIVERY_WINDOW_BYTES = 16 * 1024 * 1024;

export interface DataClientOptions {
  namespace: string;
  pattern?: string;
  token?: string;
  timeoutMs?: number;
  /** TLS settings; `grpcs://` endpoints use TLS without them. */
  tls?: ClientTls | undefined;
}

/** Typed client of prism.data.v1 through the proxy (or a standalone runner), one channel per service. */
export class DataClient implements KeyValueCalls {
  private readonly kvClient: AnyClient;
  private readonly producerClient: AnyClient;
  private readonly consumerClient: AnyClient;
  private readonly sessionsClient: AnyClient;
  private readonly mode: DialMode;

  constructor(
    readonly endpoint: string,
    private readonly options: DataClientOptions,
  ) {
    const { endpoint: target, credentials, options: channel, tls } = dialTarget(endpoint, options.tls);
    this.mode = { tls, clientCertificate: options.tls?.certFile !== undefined };
    this.kvClient = new KeyValueClient(target.address, credentials, channel) as never;
    this.producerClient = new ProducerClient(target.address, credentials, channel) as never;
    this.consumerClient = new ConsumerClient(target.address, credentials, {
      ...channel,
      'grpc-node.flow_control_window': DELIVERY_WINDOW_BYTES,
    }) as never;
    this.sessionsClient = new SessionsClient(target.address, credentials, channel) as never;
  }

  /** The namespace's caller sessions (needs admin on it). */
  listCallerSessions(): Promise<sessions.ListCallerSessionsResponse> {
    return this.unary(
      this.sessionsClient,
      'listCallerSessions',
      sessions.ListCallerSessionsRequestSchema,
      {},
    );
  }
  revokeCallerSession(id: string): Promise<sessions.RevokeCallerSessionResponse> {
    return this.unary(this.sessionsClient, 'revokeCallerSession', sessions.RevokeCallerSessionRequestSchema, {
      id,
    });
  }

  set(key: string, value: Uint8Array, ttlSeconds = 0): Promise<kv.SetResponse> {
    return this.unary(this.kvClient, 'set', kv.SetRequestSchema, {
      key,
      value,
      ttlSeconds: BigInt(ttlSeconds),
    });
  }
  get(key: string): Promise<kv.GetResponse> {
    return this.unary(this.kvClient, 'get', kv.GetRequestSchema, { key });
  }
  delete(key: string): Promise<kv.DeleteResponse> {
    return this.unary(this.kvClient, 'delete', kv.DeleteRequestSchema, { key });
  }
  exists(key: string): Promise<kv.ExistsResponse> {
    return this.unary(this.kvClient, 'exists', kv.ExistsRequestSchema, { key });
  }
  scan(prefix: string, limit = 0, cursor = ''): Promise<kv.ScanResponse> {
    return this.unary(this.kvClient, 'scan', kv.ScanRequestSchema, { prefix, limit, cursor });
  }
  ttl(key: string): Promise<kv.GetTtlResponse> {
    return this.unary(this.kvClient, 'getTtl', kv.GetTtlRequestSchema, { key });
  }
  expire(key: string, ttlSeconds: number): Promise<kv.ExpireResponse> {
    return this.unary(this.kvClient, 'expire', kv.ExpireRequestSchema, {
      key,
      ttlSeconds: BigInt(ttlSeconds),
    });
  }
  persist(key: string): Promise<kv.PersistResponse> {
    return this.unary(this.kvClient, 'persist', kv.PersistRequestSchema, { key });
  }
  batchGet(keys: string[]): Promise<kv.BatchGetResponse> {
    return this.unary(this.kvClient, 'batchGet', kv.BatchGetRequestSchema, { keys });
  }
  publish(init: MessageInitShape<typeof msg.PublishRequestSchema>): Promise<msg.PublishResponse> {
    return this.unary(this.producerClient, 'publish', msg.PublishRequestSchema, init);
  }
  acknowledge(init: MessageInitShape<typeof msg.AcknowledgeRequestSchema>): Promise<msg.AcknowledgeResponse> {
    return this.unary(this.consumerClient, 'acknowledge', msg.AcknowledgeRequestSchema, init);
  }

  /** Server-streaming Subscribe; the caller acknowledges each delivery with `acknowledge`. */
  subscribe(
    init: MessageInitShape<typeof msg.SubscribeRequestSchema>,
  ): ClientReadableStream<msg.SubscribeResponse> {
    return this.consumerClient.subscribe!(
      create(msg.SubscribeRequestSchema, init),
      this.metadata(),
    ) as ClientReadableStream<msg.SubscribeResponse>;
  }

  publishBatch(
    init: MessageInitShape<typeof msg.PublishBatchRequestSchema>,
  ): Promise<msg.PublishBatchResponse> {
    return this.unary(this.producerClient, 'publishBatch', msg.PublishBatchRequestSchema, init);
  }

  /**
   * Publishes one message whose payload travels in frames of 256 KiB (Producer/PublishUpload), for
   * payloads above a few MiB: the proxy streams it into the claim check's object store without
   * holding it whole. A stream source needs `head.size` (src/client/publish-upload.ts).
   */
  publishUpload(head: UploadHead, source: UploadSource): Promise<msg.PublishUploadResponse> {
    return publishUpload(this.producerClient, this.metadata(), head, source, (err) => this.toError(err));
  }

  /** Opens a PublishStream (src/client/publish-stream.ts). */
  publishStream(): PublishStreamWriter {
    const call = this.producerClient.publishStream!(this.metadata()) as ClientDuplexStream<
      msg.PublishStreamRequest,
      msg.PublishStreamResponse
    >;
    return new PublishStreamWriter(call, (err) => this.toError(err));
  }

  /**
   * Opens a Consume stream: deliveries arrive as ConsumeResponse items; settle them with
   * `ack(stream, ids)` on the same stream.
   */
  consume(
    init: MessageInitShape<typeof msg.SubscribeRequestSchema>,
  ): ClientDuplexStream<msg.ConsumeRequest, msg.ConsumeResponse> {
    const call = this.consumerClient.consume!(this.metadata()) as ClientDuplexStream<
      msg.ConsumeRequest,
      msg.ConsumeResponse
    >;
    call.write(
      create(msg.ConsumeRequestSchema, {
        kind: { case: 'open', value: create(msg.SubscribeRequestSchema, init) },
      }),
    );
    return call;
  }

  /** Settles deliveries of a Consume stream in one request. */
  ack(
    call: ClientDuplexStream<msg.ConsumeRequest, msg.ConsumeResponse>,
    deliveryIds: string[],
    success = true,
    reason = '',
  ): boolean {
    return call.write(
      create(msg.ConsumeRequestSchema, {
        kind: { case: 'ack', value: create(msg.ConsumeAckSchema, { deliveryIds, success, reason }) },
      }),
    );
  }

  /** Converts a stream error into the same PrismError unary calls raise. */
  streamError(err: ServiceError): PrismError {
    return this.toError(err);
  }

  close(): void {
    this.kvClient.close();
    this.producerClient.close();
    this.consumerClient.close();
    this.sessionsClient.close();
  }

  private metadata(): Metadata {
    const metadata = new Metadata();
    metadata.set(NAMESPACE_HEADER, this.options.namespace);
    if (this.options.pattern) metadata.set(PATTERN_HEADER, this.options.pattern);
    if (this.options.token) metadata.set('authorization', `Bearer ${this.options.token}`);
    return metadata;
  }

  private unary<D extends DescMessage, Res>(
    client: AnyClient,
    method: string,
    schema: D,
    init: MessageInitShape<D>,
  ): Promise<Res> {
    return unaryCall(client, method, schema, init, {
      metadata: this.metadata(),
      timeoutMs: this.options.timeoutMs,
      toError: (err) => this.toError(err),
    });
  }

  private toError(err: ServiceError): PrismError {
    return proxyCallError(err, this.endpoint, this.mode);
  }
}
