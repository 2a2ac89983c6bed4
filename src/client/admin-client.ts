import { create, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { makeGenericClientConstructor, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import {
  ControlPlane,
  ApplyNamespaceRequestSchema,
  DeleteNamespaceRequestSchema,
  ExportNamespaceRequestSchema,
  GetLatestSchemaRequestSchema,
  GetNamespaceHistoryRequestSchema,
  GetNamespaceRequestSchema,
  HeartbeatRequestSchema,
  ListNamespacesRequestSchema,
  RegisterProxyRequestSchema,
  type ApplyNamespaceResponse,
  type DeleteNamespaceResponse,
  type ExportNamespaceResponse,
  type GetLatestSchemaResponse,
  type GetNamespaceHistoryResponse,
  type GetNamespaceResponse,
  type HeartbeatResponse,
  type ListNamespacesResponse,
  type RegisterProxyResponse,
} from '../gen/prism/admin/v1/control_plane_pb.js';
import type { Diagnostic } from '../config/diagnostics.js';
import { PrismError } from '../errors.js';
import { DIAGNOSTICS_KEY, fromServiceError } from '../transport/grpc-status.js';
import { grpcServiceDefinition } from '../transport/service-definition.js';
import { dialTarget, type ClientTls } from '../transport/dial.js';
import { tlsFailure, type DialMode } from '../transport/tls-errors.js';

export { DEFAULT_ADMIN_ENDPOINT } from './endpoints.js';

/** A PrismError from ApplyNamespace that carries the server's validation diagnostics. */
export class RemoteValidationError extends PrismError {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[],
  ) {
    super('E_INVALID_NAMESPACE', message);
  }
}

const ControlPlaneClient = makeGenericClientConstructor(grpcServiceDefinition(ControlPlane), 'ControlPlane');

/** Typed, promise-based client of prism.admin.v1.ControlPlane over one connection. */
export class AdminClient {
  private readonly client: Client & Record<string, (...args: unknown[]) => unknown>;
  private readonly mode: DialMode;

  constructor(
    readonly endpoint: string,
    /** `token` may be a function, called for every call (a token that rotates). */
    private readonly options: {
      token?: string | (() => string | undefined);
      timeoutMs?: number;
      /** TLS settings; `grpcs://` endpoints use TLS without them. */
      tls?: ClientTls | undefined;
    } = {},
  ) {
    const target = dialTarget(endpoint, options.tls);
    this.mode = { tls: target.tls, clientCertificate: options.tls?.certFile !== undefined };
    this.client = new ControlPlaneClient(
      target.endpoint.address,
      target.credentials,
      target.options,
    ) as never;
  }

  apply(init: MessageInitShape<typeof ApplyNamespaceRequestSchema>): Promise<ApplyNamespaceResponse> {
    return this.call('applyNamespace', ApplyNamespaceRequestSchema, init);
  }
  get(name: string): Promise<GetNamespaceResponse> {
    return this.call('getNamespace', GetNamespaceRequestSchema, { name });
  }
  list(): Promise<ListNamespacesResponse> {
    return this.call('listNamespaces', ListNamespacesRequestSchema, {});
  }
  delete(name: string, expectedVersion?: bigint): Promise<DeleteNamespaceResponse> {
    return this.call('deleteNamespace', DeleteNamespaceRequestSchema, { name, expectedVersion });
  }
  export(name: string): Promise<ExportNamespaceResponse> {
    return this.call('exportNamespace', ExportNamespaceRequestSchema, { name });
  }
  history(name: string): Promise<GetNamespaceHistoryResponse> {
    return this.call('getNamespaceHistory', GetNamespaceHistoryRequestSchema, { name });
  }
  registerProxy(init: MessageInitShape<typeof RegisterProxyRequestSchema>): Promise<RegisterProxyResponse> {
    return this.call('registerProxy', RegisterProxyRequestSchema, init);
  }
  /** `timeoutMs` replaces the client's own for this call (a proxy beats within its interval). */
  heartbeat(
    init: MessageInitShape<typeof HeartbeatRequestSchema>,
    timeoutMs?: number,
  ): Promise<HeartbeatResponse> {
    return this.call('heartbeat', HeartbeatRequestSchema, init, timeoutMs);
  }

  /** The latest live version of a schema registry subject (a proxy's producers enforce it). */
  latestSchema(subject: string): Promise<GetLatestSchemaResponse> {
    return this.call('getLatestSchema', GetLatestSchemaRequestSchema, { subject });
  }

  close(): void {
    this.client.close();
  }

  private call<D extends DescMessage, Res>(
    method: string,
    schema: D,
    init: MessageInitShape<D>,
    timeoutMs = this.options.timeoutMs ?? 15_000,
  ): Promise<Res> {
    const request: MessageShape<D> = create(schema, init);
    const metadata = new Metadata();
    let token: string | undefined;
    try {
      token = typeof this.options.token === 'function' ? this.options.token() : this.options.token;
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (token) metadata.set('authorization', `Bearer ${token}`);
    const deadline = new Date(Date.now() + timeoutMs);
    return new Promise<Res>((resolve, reject) => {
      this.client[method]!(request, metadata, { deadline }, (err: ServiceError | null, response: Res) => {
        if (!err) {
          resolve(response);
          return;
        }
        const diagnostics = err.metadata?.get(DIAGNOSTICS_KEY)[0];
        if (diagnostics) {
          reject(new RemoteValidationError(err.details, JSON.parse(diagnostics.toString()) as Diagnostic[]));
          return;
        }
        const prism = fromServiceError(err, this.endpoint);
        const tls = tlsFailure(err, this.endpoint, this.mode);
        if (tls) reject(tls);
        else if (prism.code === 'E_UNREACHABLE') {
          reject(
            new PrismError('E_UNREACHABLE', `cannot reach the Prism admin at ${this.endpoint}`, {
              hint: 'start one with `prismctl admin serve`, or point --admin / PRISM_ADMIN_ENDPOINT at a running one',
            }),
          );
        } else reject(prism);
      });
    });
  }
}
