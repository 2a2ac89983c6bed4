import type { Logger } from 'pino';
import { AdminClient } from '../client/admin-client.js';
import type { PrismError } from '../errors.js';
import type { NamespaceTable } from './namespace-table.js';

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

  constructor(
    endpoint: string,
    private readonly proxy: { id: string; address: string; version: string },
    private readonly table: NamespaceTable,
    private readonly logger: Logger,
  ) {
    this.client = new AdminClient(endpoint, { timeoutMs: 5000 });
  }

  /** Registers and loads the first owned set; fails when the admin cannot be reached at start. */
  async start(): Promise<void> {
    await this.register();
    await this.beat();
    this.schedule();
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
    const res = await this.client.heartbeat({ proxyId: this.proxy.id, knownFingerprint: this.fingerprint });
    if (!res.changed) return;
    await this.table.reconcile(
      res.namespaces.map((o) => ({ namespace: o.namespace!, assignment: o.assignment! })),
    );
    this.fingerprint = res.fingerprint;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.beating = this.beat()
        .catch(async (err: PrismError) => {
          if (err.code === 'E_NOT_FOUND') {
            this.logger.warn('the admin does not know this proxy any more; registering again');
            await this.register().catch(() => undefined);
          } else {
            this.logger.warn({ err: err.message }, 'heartbeat failed; serving the last known namespaces');
          }
        })
        .finally(() => this.schedule());
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.beating;
    this.client.close();
  }
}
