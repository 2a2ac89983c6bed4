import type { Metadata } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { Consumer, Producer } from '../gen/prism/data/v1/messaging_pb.js';
import { KeyValue } from '../gen/prism/data/v1/keyvalue_pb.js';
import { Mailbox } from '../gen/prism/data/v1/mailbox_pb.js';
import { CloseList, startOrUnwind } from '../transport/close-list.js';
import { createGrpcServer, shutdownServer } from '../transport/grpc-server.js';
import { GrpcHttp2Server } from '../transport/grpc-http2-server.js';
import { ServerCertificates, type ServerTls } from '../transport/server-tls.js';
import { grpcServiceDefinition } from '../transport/service-definition.js';
import { isUnixAddress } from '../transport/unix-socket.js';
import { metadataValue, PATTERN_HEADER } from '../transport/metadata.js';
import { PrismError } from '../errors.js';
import { ANONYMOUS, type RunnerResolver } from './call-context.js';
import { callerOf } from './caller-header.js';
import { consumerService, type ConsumerService } from './consumer/service.js';
import { keyValueService } from './keyvalue/service.js';
import { mailboxService, type MailboxService } from './mailbox/service.js';
import type { MailboxRunnerApi } from './mailbox/runner.js';
import { producerService } from './producer/service.js';
import { servedApi } from '../config/external-patterns.js';
import type { ConsumerRunnerApi, KeyValueRunnerApi, ProducerRunnerApi, Runner } from './types.js';

export interface RunnerServerOptions {
  /** host:port, or unix:/path for a runner the proxy launched (src/proxy/launcher/). */
  listen: string;
  logger: Logger;
  tls?: ServerTls | undefined;
}

/**
 * `prismctl runner serve`: one namespace's runners (one, or several when the proxy launched the
 * process for the namespace's `isolation: namespace` patterns) in their own process, serving
 * their patterns' gRPC APIs, so a proxy can route to them for isolation. Auth is the caller's
 * (the proxy's) job here: on a Unix socket, or on TCP with mutual TLS (a remote runner), the caller
 * the proxy authenticated arrives in x-prism-caller-bin (caller-header.ts); elsewhere every caller
 * is anonymous and a call carrying the header is PERMISSION_DENIED.
 */
export class RunnerServer {
  /** Streaming calls, health and anything else the HTTP/2 server does not answer itself. */
  private readonly grpc = createGrpcServer();
  private readonly closes = new CloseList();
  private readonly runners: readonly Runner[];
  private stopping?: Promise<void>;
  private shutdownTimeoutMs = 5000;
  private consumer?: ConsumerService;
  private mailbox?: MailboxService;
  /** grpc.health.v1: '' once serving; each pattern by name, from its backends' health. */
  private readonly healthService = new HealthImplementation({ '': 'NOT_SERVING' });
  port = 0;

  constructor(
    runners: Runner | readonly Runner[],
    private readonly options: RunnerServerOptions,
  ) {
    this.runners = Array.isArray(runners) ? runners : [runners as Runner];
  }

  /** Starts the runners and serves them; when serving fails, they stop again (their leases go). */
  start(): Promise<void> {
    return startOrUnwind(this.closes, async () => {
      const certificates = this.options.tls ? new ServerCertificates(this.options.tls) : undefined;
      for (const runner of this.runners) {
        await runner.start();
        this.closes.add(`runner ${runner.pattern}`, () => runner.stop());
      }
      await this.serve(certificates);
    });
  }

  /** Every runner's backends answer (the launcher's health probe). */
  async health(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.health()));
  }

  private resolver<R>(type: string, certificates: ServerCertificates | undefined): RunnerResolver<R> {
    // The caller header is believed from the launching proxy on the private Unix socket, and on
    // TCP only with mutual TLS, where the handshake already refused every peer without a client
    // certificate from --tls-client-ca.
    const trusted = isUnixAddress(this.options.listen) || certificates?.mutual === true;
    const ofType = this.runners.filter((r) => servedApi(r.type) === type);
    return async (metadata: Metadata) => {
      const wanted = metadataValue(metadata, PATTERN_HEADER);
      const runner = wanted ? ofType.find((r) => r.pattern === wanted) : ofType[0];
      if (!runner)
        throw new PrismError('E_NOT_FOUND', `this runner process serves no ${type} pattern '${wanted}'`);
      if (!wanted && ofType.length > 1)
        throw new PrismError('E_INVALID_ARGUMENT', `this runner process serves several ${type} patterns`, {
          hint: `send ${PATTERN_HEADER} with one of: ${ofType.map((r) => r.pattern).join(', ')}`,
        });
      return { runner: runner as R, session: callerOf(metadata, trusted) ?? ANONYMOUS };
    };
  }

  private async serve(certificates: ServerCertificates | undefined): Promise<void> {
    const { listen } = this.options;
    if (isUnixAddress(listen) && certificates)
      throw new PrismError('E_USAGE', 'a Unix socket listener takes no TLS certificates');
    // Unary calls are answered on node:http2 directly; the rest goes to grpc-js (grpc-http2-server.ts).
    const http2 = new GrpcHttp2Server({ fallback: this.grpc, certificates });
    for (const type of new Set(this.runners.map((r) => servedApi(r.type)))) {
      switch (type) {
        case 'keyvalue':
          http2.addService(
            grpcServiceDefinition(KeyValue),
            keyValueService(this.resolver<KeyValueRunnerApi>(type, certificates)),
          );
          break;
        case 'producer':
          http2.addService(
            grpcServiceDefinition(Producer),
            producerService(this.resolver<ProducerRunnerApi>(type, certificates)),
          );
          break;
        case 'consumer':
          this.consumer = consumerService(this.resolver<ConsumerRunnerApi>(type, certificates));
          http2.addService(grpcServiceDefinition(Consumer), this.consumer.implementation);
          break;
        case 'mailbox':
          this.mailbox = mailboxService(this.resolver<MailboxRunnerApi>(type, certificates));
          http2.addService(grpcServiceDefinition(Mailbox), this.mailbox.implementation);
          break;
        default:
          throw new PrismError('E_USAGE', `a ${type} runner has no gRPC API to serve`, {
            hint: 'serve a keyvalue, producer, consumer or mailbox pattern',
          });
      }
    }
    this.healthService.addToServer(this.grpc);
    this.closes.add('grpc', async () => {
      await this.consumer?.endAll();
      this.mailbox?.endAll();
      await Promise.all([
        http2.close(this.shutdownTimeoutMs),
        shutdownServer(this.grpc, this.shutdownTimeoutMs),
      ]);
    });
    this.port = await http2.listen(listen);
    this.watchHealth();
    this.options.logger.info(
      {
        namespace: this.runners[0]?.namespace,
        patterns: this.runners.map((r) => `${r.pattern} (${r.type})`),
        listen,
        port: this.port,
        tls: certificates ? (certificates.mutual ? 'mtls' : 'tls') : 'off',
      },
      'prism runner serving',
    );
  }

  /** Publishes each pattern's backend health to grpc.health.v1, now and every 2 s. */
  private watchHealth(): void {
    const check = () =>
      Promise.all(
        this.runners.map((r) =>
          r.health().then(
            () => this.healthService.setStatus(r.pattern, 'SERVING'),
            () => this.healthService.setStatus(r.pattern, 'NOT_SERVING'),
          ),
        ),
      );
    const timer = setInterval(() => void check(), 2000);
    timer.unref();
    this.closes.add('health', () => {
      clearInterval(timer);
      this.healthService.setStatus('', 'NOT_SERVING');
    });
    void check();
    this.healthService.setStatus('', 'SERVING');
  }

  /** Ends subscriptions, lets in-flight calls finish (bounded), then stops the runners. Idempotent. */
  stop(timeoutMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      this.shutdownTimeoutMs = timeoutMs;
      await this.closes.close();
    })();
    return this.stopping;
  }
}
