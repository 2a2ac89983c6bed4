/**
 * Typed client of prism.data.v1.Mailbox through the proxy (or a standalone runner): Query, Get and
 * Delete, and the Watch stream. Routing, token and errors as in DataClient.
 */
import { create, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import {
  makeGenericClientConstructor,
  Metadata,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import * as mb from '../gen/prism/data/v1/mailbox_pb.js';
import { PrismError } from '../errors.js';
import { NAMESPACE_HEADER, PATTERN_HEADER } from '../transport/metadata.js';
import { grpcServiceDefinition } from '../transport/service-definition.js';
import { proxyCallError, unaryCall, type AnyClient } from './proxy-call.js';
import { dialTarget } from '../transport/dial.js';
import type { DialMode } from '../transport/tls-errors.js';
import type { DataClientOptions } from './data-client.js';

const MailboxServiceClient = makeGenericClientConstructor(grpcServiceDefinition(mb.Mailbox), 'Mailbox');

export class MailboxClient {
  private readonly client: AnyClient;
  private readonly mode: DialMode;

  constructor(
    readonly endpoint: string,
    private readonly options: DataClientOptions,
  ) {
    const { endpoint: target, credentials, options: channel, tls } = dialTarget(endpoint, options.tls);
    this.mode = { tls, clientCertificate: options.tls?.certFile !== undefined };
    this.client = new MailboxServiceClient(target.address, credentials, channel) as never;
  }

  query(init: MessageInitShape<typeof mb.MailboxQueryRequestSchema>): Promise<mb.MailboxQueryResponse> {
    return this.unary('query', mb.MailboxQueryRequestSchema, init);
  }

  get(messageId: string): Promise<mb.MailboxGetResponse> {
    return this.unary('get', mb.MailboxGetRequestSchema, { messageId });
  }

  delete(init: MessageInitShape<typeof mb.MailboxDeleteRequestSchema>): Promise<mb.MailboxDeleteResponse> {
    return this.unary('delete', mb.MailboxDeleteRequestSchema, init);
  }

  /** The Watch stream; its 'metadata' event says the watch is in place. */
  watch(
    init: MessageInitShape<typeof mb.MailboxWatchRequestSchema>,
  ): ClientReadableStream<mb.MailboxWatchResponse> {
    return this.client.watch!(
      create(mb.MailboxWatchRequestSchema, init),
      this.metadata(),
    ) as ClientReadableStream<mb.MailboxWatchResponse>;
  }

  /** Converts a stream error into the same PrismError unary calls raise. */
  streamError(err: ServiceError): PrismError {
    return this.toError(err);
  }

  close(): void {
    this.client.close();
  }

  private metadata(): Metadata {
    const metadata = new Metadata();
    metadata.set(NAMESPACE_HEADER, this.options.namespace);
    if (this.options.pattern) metadata.set(PATTERN_HEADER, this.options.pattern);
    if (this.options.token) metadata.set('authorization', `Bearer ${this.options.token}`);
    return metadata;
  }

  private unary<D extends DescMessage, Res>(
    method: string,
    schema: D,
    init: MessageInitShape<D>,
  ): Promise<Res> {
    return unaryCall(this.client, method, schema, init, {
      metadata: this.metadata(),
      timeoutMs: this.options.timeoutMs,
      toError: (err) => this.toError(err),
    });
  }

  private toError(err: ServiceError): PrismError {
    return proxyCallError(err, this.endpoint, this.mode);
  }
}
