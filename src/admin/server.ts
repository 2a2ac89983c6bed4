import { create } from '@bufbuild/protobuf';
import {
  Metadata,
  status,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { Counter, Histogram, Registry } from 'prom-client';
import {
  ControlPlane as ControlPlaneService,
  DeleteNamespaceResponseSchema,
  ExportNamespaceResponseSchema,
  GetNamespaceHistoryResponseSchema,
  GetLatestSchemaResponseSchema,
  GetNamespaceResponseSchema,
  ListNamespacesResponseSchema,
  RegisterProxyResponseSchema,
  type ApplyNamespaceRequest,
  type DeleteNamespaceRequest,
  type ExportNamespaceRequest,
  type GetLatestSchemaRequest,
  type GetNamespaceHistoryRequest,
  type GetNamespaceRequest,
  type HeartbeatRequest,
  type RegisterProxyRequest,
} from '../gen/prism/admin/v1/control_plane_pb.js';
import { DIAGNOSTICS_KEY, toServiceError } from '../transport/grpc-status.js';
import { bindServer, createGrpcServer, shutdownServer } from '../transport/grpc-server.js';
import { CloseList, startOrUnwind } from '../transport/close-list.js';
import { grpcServerCredentials, ServerCertificates, type ServerTls } from '../transport/server-tls.js';
import { grpcServiceDefinition } from '../transport/service-definition.js';
import { ControlPlane, InvalidNamespaceError } from './control-plane.js';
import type { BackendCatalog } from './catalog.js';
import { StatusHttpServer } from '../transport/status-http.js';
import { splitHostPort } from '../transport/listen-address.js';
import type { NamespaceStore } from './store.js';
import { parseProtobuf } from './schemas/protobuf.js';
import { SchemaRegistry } from './schemas/registry.js';
import { registryHttpHandler, type AuthorizeRegistry } from './schemas/rest.js';
import type { NamedPolicy } from '../auth/policy/defaults.js';
import { Console } from '../console/console.js';
import type { ConsoleLogin } from '../console/sessions.js';

/** Who is calling; the identity work replaces the default with JWT verification. */
export type Authenticate = (metadata: Metadata, method: string, request?: unknown) => Promise<string>;

export interface AdminServerOptions {
  listen: string;
  metricsListen: string;
  store: NamespaceStore;
  catalog: BackendCatalog;
  logger: Logger;
  authenticate?: Authenticate;
  heartbeatIntervalMs?: number;
  /** A proxy that misses this many heartbeat intervals loses its partitions (default 3). */
  missedHeartbeats?: number;
  /** Serve gRPC and HTTP over TLS (mTLS when it names a client CA). */
  tls?: ServerTls | undefined;
  /** Adds metrics of the admin's parts (e.g. policy decisions) to its /metrics. */
  registerMetrics?: (registry: Registry) => void;
  /** Global Cedar policies sent to proxies with their namespaces (`--policies`). */
  globalPolicies?: readonly NamedPolicy[];
  /** The web console on the HTTP port (docs/console.md); on by default, `false` turns it off. */
  console?: { login?: ConsoleLogin; publicUrl?: string } | false;
}

const SERVICE_NAME = ControlPlaneService.typeName;

/** `prismctl admin serve`: the ControlPlane gRPC service, grpc.health.v1, and /healthz + /metrics. */
export class AdminServer {
  private readonly grpc = createGrpcServer();
  private readonly closes = new CloseList();
  private stopping?: Promise<void>;
  private shutdownTimeoutMs = 5000;
  private readonly registry = new Registry();
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  private http?: StatusHttpServer;
  private readonly controlPlane: ControlPlane;
  private readonly authenticate: Authenticate;
  private readonly console?: Console;
  /** The schema registry (docs/schemas.md), served on the HTTP port. */
  private readonly schemas: SchemaRegistry;
  /** Bound addresses after start(). */
  grpcPort = 0;
  httpPort = 0;

  constructor(private readonly options: AdminServerOptions) {
    this.controlPlane = new ControlPlane({
      store: options.store,
      catalog: options.catalog,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      missedHeartbeats: options.missedHeartbeats,
      ...(options.globalPolicies ? { globalPolicies: options.globalPolicies } : {}),
    });
    this.authenticate = options.authenticate ?? (async () => 'anonymous');
    this.schemas = new SchemaRegistry({
      store: options.store.schemaStore(),
      namespaceExists: async (name) => (await options.store.get(name)) !== undefined,
    });
    options.registerMetrics?.(this.registry);
    if (options.console !== false)
      this.console = new Console({
        controlPlane: this.controlPlane,
        authenticate: this.authenticate,
        login: options.console?.login,
        publicUrl: options.console?.publicUrl,
        heartbeatIntervalMs: this.controlPlane.heartbeatIntervalMs,
        logger: options.logger.child({ component: 'console' }),
      });
    // The server owns its store: whatever happens to start, stop closes it (last).
    this.closes.add('store', () => options.store.close());
  }

  /** Serves gRPC, then HTTP; when either fails, what was opened is closed again. */
  start(): Promise<void> {
    return startOrUnwind(this.closes, () => this.serve());
  }

  private async serve(): Promise<void> {
    const certificates = this.options.tls ? new ServerCertificates(this.options.tls) : undefined;
    const requests = new Counter({
      name: 'prism_admin_requests_total',
      help: 'Control-plane calls by method and gRPC code',
      labelNames: ['method', 'code'],
      registers: [this.registry],
    });
    const latency = new Histogram({
      name: 'prism_admin_request_seconds',
      help: 'Control-plane call latency',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [this.registry],
    });
    const cp = this.controlPlane;
    const log = this.options.logger;
    const unary =
      <Req, Res>(method: string, handler: (req: Req, principal: string) => Promise<Res>) =>
      (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
        const stop = latency.startTimer({ method });
        this.authenticate(call.metadata, method, call.request)
          .then((principal) => handler(call.request, principal))
          .then(
            (response) => {
              requests.inc({ method, code: 'OK' });
              stop();
              callback(null, response);
            },
            (err: unknown) => {
              const serviceError = toServiceError(err, (md) => {
                if (err instanceof InvalidNamespaceError) {
                  md.set(DIAGNOSTICS_KEY, Buffer.from(JSON.stringify(err.diagnostics)));
                }
              });
              requests.inc({ method, code: status[serviceError.code ?? status.INTERNAL] });
              stop();
              if (serviceError.code === status.INTERNAL)
                log.error({ err, method }, 'control-plane call failed');
              callback(serviceError as never, null);
            },
          );
      };

    const implementation: UntypedServiceImplementation = {
      applyNamespace: unary<ApplyNamespaceRequest, unknown>('ApplyNamespace', async (req, principal) => {
        const res = await cp.apply(req, principal);
        if (!req.dryRun)
          log.info(
            {
              namespace: req.namespace?.namespace,
              outcome: res.outcome,
              version: Number(res.assignment?.version ?? 0),
              principal,
            },
            'namespace applied',
          );
        return res;
      }),
      getNamespace: unary<GetNamespaceRequest, unknown>('GetNamespace', async (req) =>
        create(GetNamespaceResponseSchema, await cp.get(req.name)),
      ),
      listNamespaces: unary('ListNamespaces', async () =>
        create(ListNamespacesResponseSchema, { namespaces: await cp.list() }),
      ),
      deleteNamespace: unary<DeleteNamespaceRequest, unknown>('DeleteNamespace', async (req, principal) => {
        const version = await cp.delete(
          req.name,
          req.expectedVersion === undefined ? undefined : Number(req.expectedVersion),
          principal,
        );
        log.info({ namespace: req.name, version, principal }, 'namespace deleted');
        return create(DeleteNamespaceResponseSchema, { deletedVersion: BigInt(version) });
      }),
      exportNamespace: unary<ExportNamespaceRequest, unknown>('ExportNamespace', async (req) =>
        create(ExportNamespaceResponseSchema, { namespace: await cp.export(req.name) }),
      ),
      getNamespaceHistory: unary<GetNamespaceHistoryRequest, unknown>('GetNamespaceHistory', async (req) =>
        create(GetNamespaceHistoryResponseSchema, { entries: await cp.history(req.name) }),
      ),
      registerProxy: unary<RegisterProxyRequest, unknown>('RegisterProxy', async (req) => {
        await cp.registerProxy(req.proxyId, req.address, req.version);
        log.info({ proxy: req.proxyId, address: req.address }, 'proxy registered');
        return create(RegisterProxyResponseSchema, {
          heartbeatIntervalMs: cp.heartbeatIntervalMs,
          missedHeartbeats: cp.missedHeartbeats,
        });
      }),
      heartbeat: unary<HeartbeatRequest, unknown>('Heartbeat', async (req) => {
        const res = await cp.heartbeat(req.proxyId, req.knownFingerprint, {
          knownRoutesFingerprint: req.knownRoutesFingerprint,
          leaving: req.leaving,
        });
        if (req.leaving) log.info({ proxy: req.proxyId }, 'proxy leaving; its partitions move');
        if (req.kpis) this.console?.kpis.record(req.proxyId, req.kpis);
        return res;
      }),
      getLatestSchema: unary<GetLatestSchemaRequest, unknown>('GetLatestSchema', async (req) => {
        const latest = await this.schemas.version(req.subject, 'latest');
        return create(GetLatestSchemaResponseSchema, {
          subject: latest.subject,
          id: latest.id,
          version: latest.version,
          schemaType: latest.schemaType,
          schema: latest.schema,
          ...(latest.schemaType === 'PROTOBUF'
            ? { descriptorSet: (await parseProtobuf(latest.schema)).image }
            : {}),
        });
      }),
    };
    this.grpc.addService(grpcServiceDefinition(ControlPlaneService), implementation);
    this.health.addToServer(this.grpc);

    this.closes.add('grpc', () => shutdownServer(this.grpc, this.shutdownTimeoutMs));
    this.grpcPort = await bindServer(this.grpc, this.options.listen, grpcServerCredentials(certificates));
    const [host, port] = splitHostPort(this.options.metricsListen);
    const store = this.options.store;
    await this.schemas.migrate();
    // Registry reads need the control plane's read grant, changes its write grant; a change is
    // decided on the subject's namespace and its team (global config: no namespace), so a global
    // policy can grant a team its own subjects (docs/schemas.md, Authentication and authorization).
    const authorizeSchemas: AuthorizeRegistry = async (authorization, action, namespace) => {
      const metadata = new Metadata();
      if (authorization !== undefined) metadata.set('authorization', authorization);
      if (action === 'read') return this.authenticate(metadata, 'ReadSchemas');
      const stored = namespace === undefined ? undefined : await store.get(namespace);
      const team = (stored?.declaration as { team?: unknown } | undefined)?.team;
      return this.authenticate(metadata, 'WriteSchemas', {
        namespace: { namespace: namespace ?? '', ...(typeof team === 'string' ? { team } : {}) },
      });
    };
    const http = new StatusHttpServer({
      host,
      port,
      registry: this.registry,
      certificates,
      routes: [
        registryHttpHandler({ registry: this.schemas, authorize: authorizeSchemas, logger: log }),
        ...(this.console ? [this.console.handle.bind(this.console)] : []),
      ],
      notReady: async () => {
        try {
          await store.list();
          return undefined;
        } catch {
          return 'store unavailable';
        }
      },
    });
    this.http = http;
    this.closes.add('http', () => http.stop());
    this.httpPort = (await http.start()).port;
    const console = this.console;
    if (console) {
      console.start();
      this.closes.add('console', async () => console.stop());
    }
    this.health.setStatus('', 'SERVING');
    this.health.setStatus(SERVICE_NAME, 'SERVING');
    if (!this.options.authenticate) {
      log.warn('auth is off: every caller is recorded as "anonymous" and may read and write all namespaces');
    }
    log.info(
      {
        grpc: this.options.listen,
        port: this.grpcPort,
        http: this.options.metricsListen,
        httpPort: this.httpPort,
        ...(this.console
          ? { console: `${certificates ? 'https' : 'http'}://${host}:${this.httpPort}/console` }
          : {}),
        tls: certificates ? (certificates.mutual ? 'mtls' : 'tls') : 'off',
      },
      'prism admin serving',
    );
  }

  /**
   * Stops accepting calls, lets in-flight calls finish (bounded), then closes HTTP, gRPC and the
   * store (reverse order of opening). Idempotent: a second call waits for the first.
   */
  stop(timeoutMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      this.shutdownTimeoutMs = timeoutMs;
      this.health.setStatus('', 'NOT_SERVING');
      this.health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      await this.closes.close();
    })();
    return this.stopping;
  }
}
