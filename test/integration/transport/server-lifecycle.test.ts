import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../../src/admin/catalog.js';
import { openStore } from '../../../src/admin/open-store.js';
import { AdminServer } from '../../../src/admin/server.js';
import { inProcessRunners, NamespaceTable } from '../../../src/proxy/namespace-table.js';
import { ProxyServer } from '../../../src/proxy/server.js';

const logger = pino({ level: 'silent' });

function listen(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
const portOf = (server: Server) => (server.address() as { port: number }).port;
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = await listen();
  const port = portOf(server);
  await close(server);
  return port;
}

function proxy(listenPort: number, metricsPort: number): ProxyServer {
  const table = new NamespaceTable(
    inProcessRunners({ dataDir: mkdtempSync(join(tmpdir(), 'prism-lc-')) }),
    logger,
  );
  return new ProxyServer({
    listen: `127.0.0.1:${listenPort}`,
    metricsListen: `127.0.0.1:${metricsPort}`,
    table,
    logger,
  });
}

async function admin(listenPort: number, metricsPort: number): Promise<AdminServer> {
  return new AdminServer({
    listen: `127.0.0.1:${listenPort}`,
    metricsListen: `127.0.0.1:${metricsPort}`,
    store: await openStore(join(mkdtempSync(join(tmpdir(), 'prism-lc-')), 'admin.db')),
    catalog: defaultCatalog(),
    logger,
  });
}

describe('a server whose HTTP port is taken', () => {
  it('the proxy fails to start and leaves its gRPC port free', async () => {
    const taken = await listen();
    const grpcPort = await freePort();
    const server = proxy(grpcPort, portOf(taken));
    try {
      await expect(server.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
      const again = await listen(grpcPort);
      await close(again);
      await server.stop();
      await server.stop();
    } finally {
      await close(taken);
    }
  });

  it('the admin fails to start, leaves its gRPC port free and closes its store', async () => {
    const taken = await listen();
    const grpcPort = await freePort();
    const server = await admin(grpcPort, portOf(taken));
    try {
      await expect(server.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
      const again = await listen(grpcPort);
      await close(again);
      await server.stop();
    } finally {
      await close(taken);
    }
  });
});

describe('stop', () => {
  it('may be called twice, also concurrently, on a serving proxy and admin', async () => {
    const p = proxy(0, 0);
    await p.start();
    await Promise.all([p.stop(), p.stop()]);
    await p.stop();
    const a = await admin(0, 0);
    await a.start();
    await a.stop();
    await a.stop();
  });

  it('frees both ports of a stopped proxy', async () => {
    const p = proxy(0, 0);
    await p.start();
    const ports = [p.port, p.httpPort];
    await p.stop();
    for (const port of ports) await close(await listen(port));
  });
});
