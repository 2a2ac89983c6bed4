import type { Metadata, Server } from '@grpc/grpc-js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { KeyValue } from '../gen/prism/data/v1/keyvalue_pb.js';
import { Mailbox } from '../gen/prism/data/v1/mailbox_pb.js';
import { Consumer, Producer } from '../gen/prism/data/v1/messaging_pb.js';
import { CallerSessions } from '../gen/prism/data/v1/sessions_pb.js';
import { grpcServiceDefinition } from '../transport/service-definition.js';
import { StatusHttpServer } from '../transport/status-http.js';
import { splitHostPort } from '../transport/listen-address.js';
import { CloseList, startOrUnwind } from '../transport/close-list.js';
import { bindServer, createGrpcServer, shutdownServer } from '../transport/grpc-server.js';
import { GrpcHttp2Server } from '../transport/grpc-http2-server.js';
import { MAX_MESSAGE_BYTES } from '../transport/limits.js';
import { grpcServerCredentials, ServerCertificates, type ServerTls } from '../transport/server-tls.js';
import { isPrismError, PrismError, type PrismErrorCode } from '../errors.js';
import { ANONYMOUS, type CallFacts, type RunnerResolver } from '../runners/call-context.js';
import { metadataValue, NAMESPACE_HEADER } from '../transport/metadata.js';
import { consumerService, type ConsumerService } from '../runners/consumer/service.js';
import { keyValueService } from '../runners/keyvalue/service.js';
import { mailboxService, type MailboxService } from '../runners/mailbox/service.js';
import type { MailboxRunnerApi } from '../runners/mailbox/runner.js';
import { producerService } from '../runners/producer/service.js';
import { PublishStreams } from '../runners/producer/stream.js';
import { callerSessionsService } from '../runners/session-manager/service.js';
import type {
  BackendSession,
  CallerSession,
  CallerSessionAdmin,
  CallerSessionStore,
  KeyValueCallsApi,
  PerCallerRunner,
  Runner,
} from '../runners/types.js';
import { bearerToken } from '../auth/verify.js';
import type { ServedNamespace } from './served-namespace.js';
import type { NamespaceTable } from './namespace-table.js';
import { ProxyKpiRecorder } from './kpis.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, publishUploadHandler } from './publish-upload.js';
import type { ProxyKpis } from '../gen/prism/admin/v1/control_plane_pb.js';
import type { DescService } from '@bufbuild/protobuf';
import { PeerChannels, rawServiceDefinition, routingInterceptor } from './forward.js';
import type { RouteDecision, RouteTable } from './routes.js';

/** Verifies the caller for a namespace; the identity work plugs JWT verification in here. */
export type ProxyAuthenticate = (
  metadata: Metadata,
  namespace: ServedNamespace,
  method: string,
  call?: CallFacts & { pattern: string },
) => Promise<CallerSession>;

/** One namespace's method's metric children (see ProxyServer#callSeries). */
interface CallSeries {
  latency: Histogram.Internal<string>;
  requests: Map<string, Counter.Internal>;
}

export interface ProxyServerOptions {
  listen: string;
  metricsListen: string;
  table: NamespaceTable;
  logger: Logger;
  /** Absent: no verifier. Namespaces with auth enabled are then refused unless authDisabled. */
  authenticate?: ProxyAuthenticate;
  /** A person said to serve auth-enabled namespaces without verifying tokens (--no-auth). */
  authDisabled?: boolean;
  drainTimeoutMs?: number;
  /**
   * Per-request sessions (DESIGN.md §7): a keyvalue runner whose store connects per caller serves
   * each caller over a connection made with credentials from the caller's own session.
   */
  requestSessions?: RequestSessionSource;
  /** Serve gRPC and HTTP over TLS (mTLS when it names a client CA). */
  tls?: ServerTls | undefined;
  /** Adds metrics of the proxy's parts (e.g. policy decisions) to its /metrics. */
  registerMetrics?: (registry: Registry) => void;
  /**
   * Largest gRPC message the proxy takes or sends, in bytes (default 4 MiB, gRPC's own): a Publish
   * above it gets RESOURCE_EXHAUSTED naming both sizes. Raise it for claim-checked payloads.
   */
  maxMessageBytes?: number;
  /** Largest payload a PublishUpload may announce, in bytes (default 256 MiB; --max-payload-size). */
  maxPayloadBytes?: number;
  /** Further routes on the HTTP status port (the launcher's /runners). */
  httpRoutes?: ReadonlyArray<(req: IncomingMessage, res: ServerResponse) => boolean>;
  /**
   * In a fleet (following an admin): calls for namespaces another proxy owns are forwarded to it,
   * one hop, by the route table the admin sends (docs/fleet.md, Routing).
   */
  fleet?: { routes: RouteTable; peers: PeerChannels };
}

const DATA_SERVICES: readonly DescService[] = [KeyValue, Producer, CallerSessions, Consumer, Mailbox];
const SUBSCRIBE_PATH = `/${Consumer.typeName}/${Consumer.method.subscribe.name}`;
const PUBLISH_UPLOAD_PATH = `/${Producer.typeName}/${Producer.method.publishUpload.name}`;
const LOCAL: RouteDecision = { kind: 'local' };

/** Opens (or finds) the caller's backend session for a namespace, kept in its session store. */
export interface RequestSessionSource extends CallerSessionAdmin {
  open(
    token: string,
    caller: { subject: string; expiresAt?: number | undefined },
    namespace: ServedNamespace['namespace'],
    store: CallerSessionStore,
  ): Promise<BackendSession>;
  /** Ends every session this process holds; idempotent. */
  close(): Promise<void>;
}

/** A gauge with one series of value 1 per namespace `names()` lists when it is scraped. */
function namespaceSeries(registry: Registry, name: string, help: string, names: () => string[]): Gauge {
  const gauge: Gauge = new Gauge({
    name,
    help,
    labelNames: ['namespace'],
    registers: [registry],
    collect: (): void => {
      gauge.reset();
      for (const namespace of names()) gauge.set({ namespace }, 1);
    },
  });
  return gauge;
}

/**
 * The data plane's single entry point: KeyValue, Producer and Consumer routed by
 * x-prism-namespace to in-process runners; /healthz, /readyz and /metrics beside it; on stop,
 * drains (new calls UNAVAILABLE, in-flight calls finish, subscriptions end) before closing.
 */
export class ProxyServer {
  private readonly grpc: Server;
  private readonly registry = new Registry();
  private readonly closes = new CloseList();
  private stopping?: Promise<void>;
  private consumer?: ConsumerService;
  private mailbox?: MailboxService;
  private readonly publishStreams = new PublishStreams();
  private draining = false;
  private inFlight = 0;
  private idle?: () => void;
  /** Forwarded streams, ended with UNAVAILABLE when the proxy drains. */
  private readonly forwardedStreams = new Set<(reason: PrismError) => void>();
  port = 0;
  httpPort = 0;
  private readonly kpiRecorder = new ProxyKpiRecorder();

  private readonly requests = new Counter({
    name: 'prism_proxy_requests_total',
    help: 'Calls by namespace, pattern type, method and outcome code',
    labelNames: ['namespace', 'service', 'method', 'code'],
    registers: [this.registry],
  });
  private readonly series = new Map<string, CallSeries>();
  private readonly latency = new Histogram({
    name: 'prism_proxy_request_seconds',
    help: 'Call latency in the proxy',
    labelNames: ['namespace', 'service', 'method'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  private readonly inFlightGauge = new Gauge({
    name: 'prism_proxy_in_flight',
    help: 'Calls being served',
    registers: [this.registry],
  });
  private readonly backendErrors = new Counter({
    name: 'prism_proxy_backend_errors_total',
    help: 'Calls that failed because a backend was unavailable',
    labelNames: ['namespace'],
    registers: [this.registry],
  });
  private readonly forwarded = new Counter({
    name: 'prism_proxy_forwarded_total',
    help: 'Calls forwarded to the proxy owning their namespace, by namespace and gRPC status code',
    labelNames: ['namespace', 'code'],
    registers: [this.registry],
  });
  private readonly subscriptions: Gauge = new Gauge({
    name: 'prism_proxy_subscriptions',
    help: 'Open Subscribe streams',
    registers: [this.registry],
    collect: (): void => this.subscriptions.set(this.consumer?.openCount() ?? 0),
  });
  private readonly watches: Gauge = new Gauge({
    name: 'prism_proxy_mailbox_watches',
    help: 'Open mailbox Watch streams',
    registers: [this.registry],
    collect: (): void => this.watches.set(this.mailbox?.openCount() ?? 0),
  });
  private readonly served: Gauge = new Gauge({
    name: 'prism_proxy_namespaces',
    help: 'Namespaces served',
    registers: [this.registry],
    collect: (): void => this.served.set(this.options.table.names().length),
  });
  /** One series per served namespace, so a supervisor (dev up) can tell when a namespace is live. */
  private readonly servedNames = namespaceSeries(
    this.registry,
    'prism_proxy_namespace_served',
    'A namespace this proxy serves (value 1)',
    () => this.options.table.names(),
  );
  /** A wanted namespace whose runners failed to start; the proxy tries it again with backoff. */
  private readonly failingNames = namespaceSeries(
    this.registry,
    'prism_proxy_namespace_failing',
    'A namespace this proxy should serve but whose runners failed to start (value 1)',
    () => this.options.table.failingNames(),
  );

  constructor(private readonly options: ProxyServerOptions) {
    const fleet = options.fleet;
    this.grpc = createGrpcServer(
      options.maxMessageBytes,
      fleet
        ? [
            routingInterceptor({
              services: DATA_SERVICES,
              decide: (metadata) => this.decide(metadata),
              peers: fleet.peers,
              selfId: () => fleet.routes.selfId,
              begin: (namespace, streaming, abort) => this.beginForward(namespace, streaming, abort),
            }),
          ]
        : [],
    );
    if (fleet) this.closes.add('peer channels', async () => fleet.peers.close());
    // The proxy owns its runners and caller sessions; sessions end while their stores still run.
    this.closes.add('runners', () => options.table.stop());
    options.registerMetrics?.(this.registry);
    const sessions = options.requestSessions;
    if (sessions) this.closes.add('caller sessions', () => sessions.close());
  }

  /** Serves gRPC, then HTTP; when either fails, what was opened is closed again. */
  start(): Promise<void> {
    return startOrUnwind(this.closes, () => this.serve());
  }

  private async serve(): Promise<void> {
    const { logger } = this.options;
    const certificates = this.options.tls ? new ServerCertificates(this.options.tls) : undefined;
    // Unary calls are answered on node:http2 (a quarter less CPU per call than grpc-js), every other
    // stream by grpc-js behind it (grpc-http2-server.ts). In a fleet every call passes the routing
    // interceptor, which only grpc-js runs, so there grpc-js serves them all.
    const front = this.options.fleet
      ? undefined
      : new GrpcHttp2Server({
          fallback: this.grpc,
          certificates,
          maxMessageBytes: this.options.maxMessageBytes ?? MAX_MESSAGE_BYTES,
          callStream: false,
          // Its deliveries go out without grpc-js's copy of each message (a claim-checked payload).
          serverStreams: [SUBSCRIBE_PATH],
          // An upload's frames reach the object store without grpc-js's Readable in between.
          clientStreams: [PUBLISH_UPLOAD_PATH],
        });
    const addService: Server['addService'] = (definition, implementation) =>
      front ? front.addService(definition, implementation) : this.grpc.addService(definition, implementation);
    addService(
      this.definition(KeyValue),
      keyValueService(
        (metadata, method, call) => this.admitKeyValue(metadata, method, call),
        this.observer('KeyValue'),
      ),
    );
    addService(this.definition(Producer), {
      ...producerService(this.resolver('producer'), this.observer('Producer'), this.publishStreams),
      publishUpload: publishUploadHandler({
        resolve: this.resolver('producer'),
        maxPayloadBytes: this.options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
        maxInlineBytes: this.options.maxMessageBytes ?? MAX_MESSAGE_BYTES,
        observe: this.observer('Producer'),
      }),
    });
    addService(
      this.definition(CallerSessions),
      callerSessionsService(
        (metadata, method, call) => this.admitSessions(metadata, method, call),
        this.observer('CallerSessions'),
      ),
    );
    this.consumer = consumerService(this.streamResolver());
    addService(this.definition(Consumer), this.consumer.implementation);
    this.mailbox = mailboxService(
      this.resolver<Runner & MailboxRunnerApi>('mailbox'),
      this.observer('Mailbox'),
    );
    addService(this.definition(Mailbox), this.mailbox.implementation);
    this.closes.add('grpc', async () => {
      await Promise.all([front?.close(2000), shutdownServer(this.grpc, 2000)]);
    });
    this.port = front
      ? await front.listen(this.options.listen)
      : await bindServer(this.grpc, this.options.listen, grpcServerCredentials(certificates));
    const [host, port] = splitHostPort(this.options.metricsListen);
    const http = new StatusHttpServer({
      host,
      port,
      registry: this.registry,
      certificates,
      notReady: () => this.notReady(),
      ...(this.options.httpRoutes ? { routes: this.options.httpRoutes } : {}),
    });
    this.closes.add('http', () => http.stop());
    this.httpPort = (await http.start()).port;
    if (!this.options.authenticate) {
      logger.warn(
        this.options.authDisabled
          ? 'auth is OFF (--no-auth): namespaces with auth enabled are served without verifying tokens'
          : 'no token verifier configured: namespaces with auth enabled answer UNAUTHENTICATED',
      );
    }
    logger.info(
      {
        grpc: this.options.listen,
        port: this.port,
        http: this.options.metricsListen,
        httpPort: this.httpPort,
        tls: certificates ? (certificates.mutual ? 'mtls' : 'tls') : 'off',
      },
      'prism proxy serving',
    );
  }

  /** Raw bytes in a fleet (the routing interceptor decodes what is served here), else protobuf. */
  private definition(service: DescService) {
    return this.options.fleet ? rawServiceDefinition(service) : grpcServiceDefinition(service);
  }

  private decide(metadata: Metadata): RouteDecision {
    const name = metadataValue(metadata, NAMESPACE_HEADER);
    if (!name || this.draining || this.options.table.has(name) || !this.options.fleet) return LOCAL;
    return this.options.fleet.routes.decide(name, metadata);
  }

  /** Counts a forwarded call; a unary one is in flight for the drain, a stream ends with it. */
  private beginForward(
    namespace: string,
    streaming: boolean,
    abort: (reason: PrismError) => void,
  ): (code: number) => void {
    if (streaming) this.forwardedStreams.add(abort);
    else this.enter();
    return (code) => {
      this.forwarded.inc({ namespace, code: String(code) });
      if (streaming) this.forwardedStreams.delete(abort);
      else this.leave();
    };
  }

  private enter(): void {
    this.inFlight++;
    this.inFlightGauge.inc();
  }

  private leave(): void {
    this.inFlight--;
    this.inFlightGauge.dec();
    if (this.inFlight === 0) this.idle?.();
  }

  /** The traffic summary the proxy sends with its heartbeat (docs/console.md). */
  kpis(): ProxyKpis {
    return this.kpiRecorder.snapshot(this.options.table.names(), this.consumer?.openCount() ?? 0);
  }

  /** Drains, then closes everything it opened, in reverse order. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.drainAndClose();
    return this.stopping;
  }

  private async drainAndClose(): Promise<void> {
    const { logger } = this.options;
    this.draining = true;
    logger.info({ inFlight: this.inFlight }, 'draining');
    const draining = new PrismError('E_UNAVAILABLE', 'the proxy is draining', {
      hint: 'retry against another proxy',
    });
    for (const abort of [...this.forwardedStreams]) abort(draining);
    await Promise.all([this.consumer?.endAll(), this.publishStreams.endAll()]);
    this.mailbox?.endAll();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.drainTimeoutMs ?? 10_000);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await this.closes.close();
    logger.info('stopped');
  }

  private async notReady(): Promise<string | undefined> {
    if (this.draining) return 'draining';
    const runners = this.options.table.runners();
    const failures = await Promise.all(
      runners.map((r) =>
        r.health().then(
          () => undefined,
          () => `${r.namespace}/${r.pattern}`,
        ),
      ),
    );
    const down = failures.filter(Boolean);
    return down.length ? `backends unavailable for ${down.join(', ')}` : undefined;
  }

  /** Keyvalue calls run on the caller's own connection when the store connects per caller. */
  private async admitKeyValue(
    metadata: Metadata,
    method: string,
    call?: CallFacts,
  ): Promise<{ runner: KeyValueCallsApi; session: CallerSession }> {
    const admitted = await this.admit<Runner & KeyValueCallsApi & Partial<PerCallerRunner<KeyValueCallsApi>>>(
      metadata,
      'keyvalue',
      method,
      call,
    );
    const { runner, session, namespace } = admitted;
    if (!runner.needsCallerSession || !runner.forCaller) return admitted;
    const sessions = this.options.requestSessions;
    if (!sessions || !this.options.authenticate || !namespace.namespace.auth?.enabled) {
      throw new PrismError(
        'E_UNAVAILABLE',
        `namespace '${namespace.namespace.namespace}' connects to its store with each caller's credentials and this proxy opens no caller sessions`,
        { hint: 'serve it with auth on and Vault configured' },
      );
    }
    const name = namespace.namespace.namespace;
    const store = this.options.table.sessionStore(name);
    if (!store) {
      throw new PrismError(
        'E_UNAVAILABLE',
        `namespace '${name}' has no session-manager pattern to keep its caller sessions in`,
        { hint: 'declare a session-manager pattern; validation requires one when auth.vault is enabled' },
      );
    }
    const backend = await sessions.open(bearerToken(metadata), session, namespace.namespace, store);
    return { runner: await runner.forCaller(backend), session };
  }

  /** Caller-session administration: the namespace's session store, for its admins. */
  private async admitSessions(
    metadata: Metadata,
    method: string,
    call?: CallFacts,
  ): Promise<{ runner: { store: CallerSessionStore; admin: CallerSessionAdmin }; session: CallerSession }> {
    const admitted = await this.admit<Runner & CallerSessionStore>(metadata, 'session-manager', method, call);
    const admin = this.options.requestSessions;
    if (!admin) {
      throw new PrismError('E_UNAVAILABLE', 'this proxy opens no caller sessions (auth is off)');
    }
    return { runner: { store: admitted.runner, admin }, session: admitted.session };
  }

  private async admit<R extends Runner>(
    metadata: Metadata,
    type: string,
    method: string,
    call?: CallFacts,
  ): Promise<{ runner: R; session: CallerSession; namespace: ServedNamespace }> {
    if (this.draining)
      throw new PrismError('E_UNAVAILABLE', 'the proxy is draining', { hint: 'retry against another proxy' });
    const name = metadataValue(metadata, NAMESPACE_HEADER);
    if (name && this.options.fleet && !this.options.table.has(name)) {
      const moving = this.options.fleet.routes.notServed(name, metadata);
      if (moving) throw moving;
    }
    const { runner, namespace } = this.options.table.route<R>(metadata, type);
    if (this.options.authenticate)
      return {
        runner,
        namespace,
        session: await this.options.authenticate(metadata, namespace, method, {
          ...call,
          pattern: runner.pattern,
          patternType: type,
        }),
      };
    if (namespace.namespace.auth?.enabled && !this.options.authDisabled) {
      throw new PrismError(
        'E_UNAUTHENTICATED',
        `namespace '${namespace.namespace.namespace}' requires auth and this proxy cannot verify tokens`,
      );
    }
    return { runner, namespace, session: ANONYMOUS };
  }

  private resolver<R extends Runner>(type: string): RunnerResolver<R> {
    return (metadata, method, call) => this.admit<R>(metadata, type, method, call);
  }

  private streamResolver<R extends Runner>(): RunnerResolver<R> {
    return async (metadata, method, call) => {
      const admitted = await this.admit<R>(metadata, 'consumer', method, call);
      // Open subscriptions per namespace, for the console's KPIs (src/proxy/kpis.ts).
      const name = admitted.namespace.namespace.namespace;
      return { ...admitted, runner: this.kpiRecorder.countSubscriptions(name, admitted.runner) };
    };
  }

  /**
   * The latency and request-count series of one namespace's method, looked up once: prom-client
   * hashes a label object on every observe() and inc() otherwise. Bounded by namespaces × methods.
   */
  private callSeries(namespace: string, service: string, method: string): CallSeries {
    const key = `${namespace}\n${service}\n${method}`;
    let series = this.series.get(key);
    if (!series) {
      series = { latency: this.latency.labels(namespace, service, method), requests: new Map() };
      this.series.set(key, series);
    }
    return series;
  }

  /** Counts, times and logs every unary call; tracks in-flight calls for the drain. */
  private observer(service: string) {
    return (method: string, work: Promise<unknown>, metadata: Metadata) => {
      this.enter();
      const namespace = metadataValue(metadata, NAMESPACE_HEADER) ?? '';
      // One clock reading and one label object per call: prom-client's startTimer() allocates a
      // closure, an hrtime pair and two more label objects, all garbage on the hot path.
      const started = performance.now();
      const finish = this.kpiRecorder.begin(namespace);
      const done = (code: PrismErrorCode | 'OK', err?: unknown) => {
        const label = this.options.table.has(namespace) ? namespace : 'unknown';
        const seconds = (performance.now() - started) / 1000;
        const series = this.callSeries(label, service, method);
        series.latency.observe(seconds);
        finish(code, seconds);
        let requests = series.requests.get(code);
        if (!requests) {
          requests = this.requests.labels(label, service, method, code);
          series.requests.set(code, requests);
        }
        requests.inc();
        if (err && isPrismError(err) && err.code === 'E_BACKEND_DOWN')
          this.backendErrors.inc({ namespace: label });
        if (err && !isPrismError(err))
          this.options.logger.error(
            { requestId: randomUUID(), service, method, namespace, err },
            'call failed',
          );
        this.leave();
      };
      work.then(
        () => done('OK'),
        (err: unknown) => done(isPrismError(err) ? err.code : 'E_INTERNAL', err),
      );
    };
  }
}
