import type { Logger } from 'pino';
import { AdminClient } from '../client/admin-client.js';
import { PrismError } from '../errors.js';
import type { ClientTls } from '../transport/dial.js';
import type { NamespaceTable } from './namespace-table.js';
import type { RegisteredSchema, SchemaType } from '../runners/payload/schema-source.js';
import type { NamedPolicy } from '../auth/policy/defaults.js';
import type { ProxyKpis } from '../gen/prism/admin/v1/control_plane_pb.js';

/**
 * Keeps a NamespaceTable in step with the control plane: registers the proxy, heartbeats, and on
 * every change of the owned set reconciles the table. While the admin is unreachable the proxy
 * keeps serving what it has.
 */
export class AdminSource {
  private readonly client: AdminClient;
  private timer?: NodeJS.Timeout;
  private fingerprint = '';
  private intervalMs = 2000;
  private stopped = false;
  private beating?: Promise<void>;
  private kpis?: () => ProxyKpis;

  constructor(
    endpoint: string,
    private readonly proxy: { id: string; address: string; version: string },
    private readonly table: NamespaceTable,
    private readonly logger: Logger,
    /** The bearer token for an auth-enabled admin, read for every call (see auth/admin-token.ts). */
    private readonly token?: { source: string; token(): string | undefined },
    /** TLS to the admin (grpcs:// endpoints use TLS without it). */
    tls?: ClientTls,
    /** Receives the admin's global policies whenever the owned set changes. */
    private readonly onPolicies?: (policies: NamedPolicy[]) => void,
  ) {
    this.client = new AdminClient(endpoint, {
      timeoutMs: 5000,
      tls,
      ...(token !== undefined ? { token: () => token.token() } : {}),
    });
  }

  /** Sends this traffic summary with every heartbeat, for the admin's console. */
  reportKpis(kpis: () => ProxyKpis): void {
    this.kpis = kpis;
  }

  /** Registers and loads the first owned set; fails when the admin cannot be reached at start. */
  async start(): Promise<void> {
    try {
      await this.register();
    } catch (err) {
      throw this.refusal(err as PrismError) ?? err;
    }
    await this.beat();
    this.schedule();
  }

  /** A clear log line and error when the admin refuses this proxy's token (or its lack of one). */
  private refusal(err: PrismError): PrismError | undefined {
    if (err.code !== 'E_UNAUTHENTICATED' && err.code !== 'E_PERMISSION_DENIED') return undefined;
    const source = this.token?.source ?? 'none';
    this.logger.error(
      { admin: this.client.endpoint, tokenSource: source, err: `${err.code}: ${err.message}` },
      'the admin refused to register this proxy',
    );
    return new PrismError(
      err.code,
      `the admin at ${this.client.endpoint} refused to register this proxy: ${err.message}`,
      {
        hint:
          source === 'none'
            ? 'give the proxy a token in a proxy group of the admin: --admin-token-file, PRISM_ADMIN_TOKEN or the service identity JWT'
            : `the token from ${source} must belong to a proxy group of the admin (--auth-proxy-group) or carry scope prism:proxy`,
      },
    );
  }

  private async register(): Promise<void> {
    const res = await this.client.registerProxy({
      proxyId: this.proxy.id,
      address: this.proxy.address,
      version: this.proxy.version,
    });
    this.intervalMs = res.heartbeatIntervalMs || this.intervalMs;
    this.fingerprint = '';
  }

  private async beat(): Promise<void> {
    const res = await this.client.heartbeat({
      proxyId: this.proxy.id,
      knownFingerprint: this.fingerprint,
      kpis: this.kpis?.(),
    });
    if (!res.changed) return;
    this.onPolicies?.(res.policies.map((p) => ({ id: p.id, source: p.source, line: p.line, text: p.cedar })));
    await this.table.reconcile(
      res.namespaces.map((o) => ({ namespace: o.namespace!, assignment: o.assignment! })),
    );
    this.fingerprint = res.fingerprint;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.beating = this.beat()
        .catch(async (caught: unknown) => {
          const err = caught as PrismError;
          if (err.code === 'E_NOT_FOUND') {
            this.logger.warn('the admin does not know this proxy any more; registering again');
            await this.register().catch(() => undefined);
          } else if (err.code === 'E_UNAUTHENTICATED' || err.code === 'E_PERMISSION_DENIED') {
            this.logger.warn(
              { tokenSource: this.token?.source ?? 'none', err: `${err.code}: ${err.message}` },
              'the admin refused this proxy’s token; serving the last known namespaces',
            );
          } else {
            this.logger.warn({ err: err.message }, 'heartbeat failed; serving the last known namespaces');
          }
        })
        .finally(() => this.schedule());
    }, this.intervalMs);
  }

  /** The latest version of a schema registry subject, for producers with a `schema` setting. */
  async latestSchema(subject: string): Promise<RegisteredSchema> {
    const res = await this.client.latestSchema(subject);
    return {
      subject: res.subject,
      id: res.id,
      version: res.version,
      schemaType: res.schemaType as SchemaType,
      schema: res.schema,
      ...(res.descriptorSet.length > 0 ? { descriptorSet: res.descriptorSet } : {}),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.beating;
    this.client.close();
  }
}
