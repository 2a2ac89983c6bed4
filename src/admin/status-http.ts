import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface StatusHttpOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Undefined when ready, otherwise the reason it is not. */
  notReady: () => Promise<string | undefined>;
}

/** /healthz (process is up), /readyz (can serve) and /metrics (Prometheus text) on one HTTP port. */
export class StatusHttpServer {
  private server?: Server;

  constructor(private readonly options: StatusHttpOptions) {}

  async start(): Promise<AddressInfo> {
    const { registry, notReady } = this.options;
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const reply = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
        res.writeHead(code, { 'content-type': type });
        res.end(body);
      };
      if (req.method !== 'GET') return reply(405, 'method not allowed\n');
      if (path === '/healthz') return reply(200, 'ok\n');
      if (path === '/readyz') {
        notReady().then(
          (reason) => (reason ? reply(503, `not ready: ${reason}\n`) : reply(200, 'ready\n')),
          () => reply(503, 'not ready\n'),
        );
        return;
      }
      if (path === '/metrics') {
        registry.metrics().then(
          (text) => reply(200, text, registry.contentType),
          () => reply(500, 'metrics unavailable\n'),
        );
        return;
      }
      reply(404, 'not found\n');
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.options.port, this.options.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
