import type { Logger } from 'pino';
import { Consumer, Producer } from '../gen/prism/data/v1/messaging_pb.js';
import { KeyValue } from '../gen/prism/data/v1/keyvalue_pb.js';
import { Mailbox } from '../gen/prism/data/v1/mailbox_pb.js';
import { CloseList, startOrUnwind } from '../transport/close-list.js';
import { bindServer, createGrpcServer, shutdownServer } from '../transport/grpc-server.js';
import { grpcServerCredentials, ServerCertificates, type ServerTls } from '../transport/server-tls.js';
import { grpcServiceDefinition } from '../transport/service-definition.js';
import { PrismError } from '../errors.js';
import { ANONYMOUS, type RunnerResolver } from './call-context.js';
import { consumerService, type ConsumerService } from './consumer/service.js';
import { keyValueService } from './keyvalue/service.js';
import { mailboxService, type MailboxService } from './mailbox/service.js';
import type { MailboxRunnerApi } from './mailbox/runner.js';
import { producerService } from './producer/service.js';
import type { ConsumerRunnerApi, KeyValueRunnerApi, ProducerRunnerApi, Runner } from './types.js';

/**
 * `prismctl runner serve`: one runner in its own process, serving its pattern's gRPC API, so a
 * proxy can route to it for isolation. Auth is the caller's (the proxy's) job here.
 */
export class RunnerServer {
  private readonly grpc = createGrpcServer();
  private readonly closes = new CloseList();
  private stopping?: Promise<void>;
  private shutdownTimeoutMs = 5000;
  private consumer?: ConsumerService;
  private mailbox?: MailboxService;
  port = 0;

  constructor(
    private readonly runner: Runner,
    private readonly options: { listen: string; logger: Logger; tls?: ServerTls | undefined },
  ) {}

  /** Starts the runner and serves it; when serving fails, the runner stops again (its leases go). */
  start(): Promise<void> {
    return startOrUnwind(this.closes, async () => {
      const certificates = this.options.tls ? new ServerCertificates(this.options.tls) : undefined;
      await this.runner.start();
      this.closes.add('runner', () => this.runner.stop());
      await this.serve(certificates);
    });
  }

  private async serve(certificates: ServerCertificates | undefined): Promise<void> {
    const resolveAs = <R>() =>
      (async () => ({ runner: this.runner as R, session: ANONYMOUS })) as RunnerResolver<R>;
    switch (this.runner.type) {
      case 'keyvalue':
        this.grpc.addService(
          grpcServiceDefinition(KeyValue),
          keyValueService(resolveAs<KeyValueRunnerApi>()),
        );
        break;
      case 'producer':
        this.grpc.addService(
          grpcServiceDefinition(Producer),
          producerService(resolveAs<ProducerRunnerApi>()),
        );
        break;
      case 'consumer':
        this.consumer = consumerService(resolveAs<ConsumerRunnerApi>());
        this.grpc.addService(grpcServiceDefinition(Consumer), this.consumer.implementation);
        break;
      case 'mailbox':
        this.mailbox = mailboxService(resolveAs<MailboxRunnerApi>());
        this.grpc.addService(grpcServiceDefinition(Mailbox), this.mailbox.implementation);
        break;
      default:
        throw new PrismError('E_USAGE', `a ${this.runner.type} runner has no gRPC API to serve`, {
          hint: 'serve a keyvalue, producer, consumer or mailbox pattern',
        });
    }
    this.closes.add('grpc', async () => {
      await this.consumer?.endAll();
      this.mailbox?.endAll();
      await shutdownServer(this.grpc, this.shutdownTimeoutMs);
    });
    this.port = await bindServer(this.grpc, this.options.listen, grpcServerCredentials(certificates));
    this.options.logger.info(
      {
        namespace: this.runner.namespace,
        pattern: this.runner.pattern,
        type: this.runner.type,
        listen: this.options.listen,
        port: this.port,
        tls: certificates ? (certificates.mutual ? 'mtls' : 'tls') : 'off',
      },
      'prism runner serving',
    );
  }

  /** Ends subscriptions, lets in-flight calls finish (bounded), then stops the runner. Idempotent. */
  stop(timeoutMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      this.shutdownTimeoutMs = timeoutMs;
      await this.closes.close();
    })();
    return this.stopping;
  }
}
