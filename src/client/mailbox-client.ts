/**
 * Typed client of prism.data.v1.Mailbox through the proxy (or a standalone runner): Query, Get and
 * Delete, and the Watch stream. Routing, token and errors as in DataClient.
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  makeGenericClientConstructor,
  Metadata,
  type Client,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import * as mb from '../gen/prism/data/v1/mailbox_pb.js';
import { PrismError } from '../errors.js';
import { NAMESPACE_HEADER, PATTERN_HEADER } from '../transport/metadata.js';
import { fromServiceError } from '../transport/grpc-status.js';
import { grpcServiceDefinition } from '../transport/service-definition.js';
import { dialTarget } from '../transport/dial.js';
import { tlsFailure, type DialMode } from '../transport/tls-errors.js';
import type { DataClientOptions } from './data-client.js';

const MailboxServiceClient = makeGenericClientConstructor(grpcServiceDefinition(mb.Mailbox), 'Mailbox');

type AnyClient = Client & Record<string, (...args: unknown[]) => unknown>;

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

  private unary<D extends Parameters<typeof create>[0], Res>(
    method: string,
    schema: D,
    init: MessageInitShape<D>,
  ): Promise<Res> {
    const deadline = new Date(Date.now() + (this.options.timeoutMs ?? 15_000));
    return new Promise<Res>((resolve, reject) => {
      this.client[method]!(
        create(schema, init),
        this.metadata(),
        { deadline },
        (err: ServiceError | null, res: Res) => (err ? reject(this.toError(err)) : resolve(res)),
      );
    });
  }

  private toError(err: ServiceError): PrismError {
    const tls = tlsFailure(err, this.endpoint, this.mode);
    if (tls) return tls;
    const prism = fromServiceError(err, this.endpoint);
    if (prism.code === 'E_UNREACHABLE' && !err.metadata?.get('x-prism-error-code').length) {
      return new PrismError('E_UNREACHABLE', `cannot reach the Prism proxy at ${this.endpoint}`, {
        hint: 'start one with `prismctl proxy serve` or `prismctl dev up`, or point --proxy / PRISM_PROXY_ENDPOINT at a running one',
      });
    }
    return prism;
  }
}
