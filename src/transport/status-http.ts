import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { ServerCertificates } from './server-tls.js';

export interface StatusHttpOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Undefined when ready, otherwise the reason it is not. */
  notReady: () => Promise<string | undefined>;
  /** Serve HTTPS with these certificates (and require client certificates when they say so). */
  certificates?: ServerCertificates | undefined;
  /** Further routes, asked in order before the status paths; one that returns true took the request. */
  routes?: ReadonlyArray<(req: IncomingMessage, res: ServerResponse) => boolean>;
}

/**
 * /healthz (process is up), /readyz (can serve) and /metrics (Prometheus text) on one HTTP port;
 * HTTPS with the server's own certificates when it has them, following their changes.
 */
export class StatusHttpServer {
  private server?: Server | HttpsServer;
  private unfollow?: () => void;

  constructor(private readonly options: StatusHttpOptions) {}

  async start(): Promise<AddressInfo> {
    const { registry, notReady } = this.options;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '/').split('?')[0];
      const reply = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
        res.writeHead(code, { 'content-type': type });
        res.end(body);
      };
      if (this.options.routes?.some((route) => route(req, res))) return;
      if (req.method !== 'GET') {
        reply(405, 'method not allowed\n');
        return;
      }
      if (path === '/healthz') {
        reply(200, 'ok\n');
        return;
      }
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
    };
    const certificates = this.options.certificates;
    if (certificates) {
      const https = createHttpsServer(certificates.httpsOptions(), handler);
      this.unfollow = certificates.follow((options) => https.setSecureContext(options));
      this.server = https;
    } else {
      this.server = createServer(handler);
    }
    const server = this.server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.options.port, this.options.host, () => resolve());
      });
    } catch (err) {
      await this.stop();
      throw err;
    }
    return server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.unfollow?.();
    this.unfollow = undefined;
    await new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
