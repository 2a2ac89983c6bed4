import type { Logger } from 'pino';
import { AdminClient } from '../client/admin-client.js';
import { PrismError } from '../errors.js';
import type { ClientTls } from '../transport/dial.js';
import type { NamespaceTable } from './namespace-table.js';
import type { RegisteredSchema, SchemaType } from '../runners/payload/schema-source.js';
import type { NamedPolicy } from '../auth/policy/defaults.js';
import type { NamespaceRoute, ProxyKpis } from '../gen/prism/admin/v1/control_plane_pb.js';

/** Failures that mean "this admin is not answering": the next admin in the list is tried. */
const FAILOVER_CODES = new Set(['E_UNREACHABLE', 'E_UNAVAILABLE', 'E_STORE_UNAVAILABLE', 'E_INTERNAL']);

/**
 * Keeps a NamespaceTable in step with the control plane: registers the proxy, heartbeats, and on
 * every change of the owned set reconciles the table; hands the fleet's route table to `onRoutes`.
 * Several admins sharing one store may be given: a call that one of them does not answer goes to
 * the next at once, and the proxy stays with the admin that answered (docs/fleet.md, Failover).
 * While no admin is reachable the proxy keeps serving what it has.
 */
export class AdminSource {
  private readonly clients: AdminClient[];
  private current = 0;
  private timer?: NodeJS.Timeout;
  private fingerprint = '';
  private routesFingerprint = '';
  private intervalMs = 2000;
  private stopped = false;
  private beating?: Promise<void>;
  private reconciling?: Promise<void> | undefined;
  private kpis?: () => ProxyKpis;
  /** Receives the fleet's route table whenever it changes. */
  onRoutes?: (routes: NamespaceRoute[]) => void;

  constructor(
    endpoints: string | readonly string[],
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
    const list = typeof endpoints === 'string' ? [endpoints] : [...endpoints];
    if (list.length === 0) throw new PrismError('E_USAGE', 'the proxy needs at least one admin endpoint');
    this.clients = list.map(
      (endpoint) =>
        new AdminClient(endpoint, {
          timeoutMs: 5000,
          tls,
          ...(token !== undefined ? { token: () => token.token() } : {}),
        }),
    );
  }

  /** The admin the proxy talks to now. */
  get endpoint(): string {
    return this.clients[this.current]!.endpoint;
  }

  /** The heartbeat interval the admin asked for. */
  get heartbeatIntervalMs(): number {
    return this.intervalMs;
  }

  /**
   * Runs `call` against the current admin, then each other one in turn while they do not answer;
   * stays with the first that does.
   */
  private async failover<T>(call: (client: AdminClient) => Promise<T>): Promise<T> {
    let last: unknown;
    for (let i = 0; i < this.clients.length; i++) {
      const index = (this.current + i) % this.clients.length;
      try {
        const result = await call(this.clients[index]!);
        if (index !== this.current) {
          this.logger.warn(
            { from: this.clients[this.current]!.endpoint, to: this.clients[index]!.endpoint },
            'admin failover: following another admin',
          );
          this.current = index;
        }
        return result;
      } catch (err) {
        last = err;
        if (!FAILOVER_CODES.has((err as PrismError).code)) throw err;
      }
    }
    throw last;
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
    await this.reconciling;
    this.schedule();
  }

  /** A clear log line and error when the admin refuses this proxy's token (or its lack of one). */
  private refusal(err: PrismError): PrismError | undefined {
    if (err.code !== 'E_UNAUTHENTICATED' && err.code !== 'E_PERMISSION_DENIED') return undefined;
    const source = this.token?.source ?? 'none';
    this.logger.error(
      { admin: this.endpoint, tokenSource: source, err: `${err.code}: ${err.message}` },
      'the admin refused to register this proxy',
    );
    return new PrismError(
      err.code,
      `the admin at ${this.endpoint} refused to register this proxy: ${err.message}`,
      {
        hint:
          source === 'none'
            ? 'give the proxy a token in a proxy group of the admin: --admin-token-file, PRISM_ADMIN_TOKEN or the service identity JWT'
            : `the token from ${source} must belong to a proxy group of the admin (--auth-proxy-group) or carry scope prism:proxy`,
      },
    );
  }

  private async register(): Promise<void> {
    const res = await this.failover((client) =>
      client.registerProxy({
        proxyId: this.proxy.id,
        address: this.proxy.address,
        version: this.proxy.version,
      }),
    );
    this.intervalMs = res.heartbeatIntervalMs || this.intervalMs;
    this.fingerprint = '';
  }

  private async beat(): Promise<void> {
    // Within one interval, so that a silent admin leaves time to try the next one.
    const res = await this.failover((client) =>
      client.heartbeat(
        {
          proxyId: this.proxy.id,
          knownFingerprint: this.fingerprint,
          knownRoutesFingerprint: this.routesFingerprint,
          kpis: this.kpis?.(),
        },
        Math.max(this.intervalMs, 250),
      ),
    );
    if (res.routesChanged) {
      this.onRoutes?.(res.routes);
      this.routesFingerprint = res.routesFingerprint;
    }
    if (!res.changed || this.reconciling) return;
    this.onPolicies?.(res.policies.map((p) => ({ id: p.id, source: p.source, line: p.line, text: p.cedar })));
    // Heartbeats go on while runners start (a failover may start many): a proxy busy starting
    // namespaces must not look dead. The fingerprint is taken once the table matches.
    const fingerprint = res.fingerprint;
    this.reconciling = this.table
      .reconcile(res.namespaces.map((o) => ({ namespace: o.namespace!, assignment: o.assignment! })))
      .then(() => {
        this.fingerprint = fingerprint;
      })
      .finally(() => {
        this.reconciling = undefined;
      });
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
    const res = await this.failover((client) => client.latestSchema(subject));
    return {
      subject: res.subject,
      id: res.id,
      version: res.version,
      schemaType: res.schemaType as SchemaType,
      schema: res.schema,
      ...(res.descriptorSet.length > 0 ? { descriptorSet: res.descriptorSet } : {}),
    };
  }

  /**
   * The drain's first step: stops heartbeating and tells the admin this proxy is leaving, so its
   * partitions move to the live proxies now; the proxy keeps serving its namespaces meanwhile.
   * Learns the route table without this proxy. True when namespaces moved to other live proxies
   * (they take them at their next heartbeat); false when nothing moved or no admin could be told.
   */
  async leave(): Promise<boolean> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.beating;
    try {
      const res = await this.failover((client) =>
        client.heartbeat(
          {
            proxyId: this.proxy.id,
            knownFingerprint: this.fingerprint,
            knownRoutesFingerprint: this.routesFingerprint,
            leaving: true,
          },
          Math.max(this.intervalMs, 250),
        ),
      );
      if (!res.routesChanged) return false;
      this.onRoutes?.(res.routes);
      const handedOver = res.routes.some((r) => r.ownerProxy !== '');
      this.logger.info({ admin: this.endpoint, handedOver }, 'left the fleet');
      return handedOver;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not tell an admin this proxy is leaving');
      return false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.beating;
    for (const client of this.clients) client.close();
  }
}
