import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { defaultCatalog } from '../admin/catalog.js';
import { openStore } from '../admin/open-store.js';
import { AdminServer } from '../admin/server.js';
import { AdminClient } from '../client/admin-client.js';
import { AdminSource } from '../proxy/admin-source.js';
import { inProcessRunners, NamespaceTable } from '../proxy/namespace-table.js';
import { ProxyServer } from '../proxy/server.js';
import { Launcher } from '../proxy/launcher/launcher.js';
import { isolatedRunners } from '../proxy/launcher/isolated-runners.js';
import { runnersRoute } from '../proxy/launcher/runners-route.js';
import { envCredentials } from '../auth/env-credentials.js';
import { DevIdp } from '../auth/dev-idp.js';
import type { DevTlsFiles } from './dev-tls.js';
import type { NamespaceSelection } from './namespaces.js';
import type { DevPorts } from './ports.js';
import { DEFAULT_SCHEMA_TTL_MS, SchemaCache } from '../runners/payload/schema-source.js';

export interface EmbeddedOptions {
  host: string;
  ports: DevPorts;
  /** Holds admin.db and the sqlite driver's files. */
  dataDir: string;
  namespaces: NamespaceSelection;
  logger: Logger;
  version: string;
  heartbeatIntervalMs?: number;
  /** Serve the admin's and the proxy's gRPC and HTTP ports over TLS with these files. */
  tls?: DevTlsFiles | undefined;
}

export interface EmbeddedStack {
  applied: string[];
  /** The development OpenID provider's issuer (`prismctl login --issuer <it>`). */
  issuer: string;
  stop(): Promise<void>;
}

/** Stable, so a persisted store does not collect a new proxy on every start. */
const PROXY_ID = 'dev-embedded';

/**
 * The embedded stack in this process: the admin on a SQLite store, the namespaces applied to it,
 * then a proxy that follows the admin and serves them with memstore and sqlite drivers. Returns
 * once the proxy serves every applied namespace. On a failure part-way, stops what it started.
 */
export async function startEmbeddedStack(options: EmbeddedOptions): Promise<EmbeddedStack> {
  const { host, ports, logger } = options;
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const adminLogger = logger.child({ component: 'admin' });
  const proxyLogger = logger.child({ component: 'proxy' });
  const stops: Array<() => Promise<void>> = [];
  const serverTls = options.tls
    ? { certFile: options.tls.certFile, keyFile: options.tls.keyFile }
    : undefined;
  const clientTls = options.tls ? { caFile: options.tls.caFile } : undefined;
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err: unknown) => logger.warn({ err }, 'stop failed'));
  };
  try {
    // The provider's port is bound now; oidc-provider itself (~0.4 s of CPU) loads on the first
    // request, or in the background shortly after the stack is ready.
    const idp = new DevIdp({ port: ports.idp, deferProvider: true });
    stops.push(() => idp.stop());
    const issuer = await idp.start();
    const store = await openStore(join(options.dataDir, 'admin.db'));
    const admin = new AdminServer({
      listen: `${host}:${ports.admin}`,
      metricsListen: `${host}:${ports.adminMetrics}`,
      store,
      catalog: defaultCatalog(),
      logger: adminLogger,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
      tls: serverTls,
    });
    stops.push(() => admin.stop());
    await admin.start();

    const applied: string[] = [];
    const client = new AdminClient(`${host}:${ports.admin}`, { timeoutMs: 5000, tls: clientTls });
    try {
      for (const { request, file } of options.namespaces.runnable) {
        const res = await client.apply({ namespace: request, dryRun: false, source: file });
        applied.push(request.namespace);
        adminLogger.info(
          { namespace: request.namespace, version: Number(res.assignment?.version ?? 0) },
          'dev namespace applied',
        );
      }
    } finally {
      client.close();
    }

    const dataDir = options.dataDir;
    const registered: { source?: AdminSource } = {};
    const schemas = new SchemaCache({
      ttlMs: DEFAULT_SCHEMA_TTL_MS,
      fetch: (subject) =>
        registered.source
          ? registered.source.latestSchema(subject)
          : Promise.reject(new Error('the proxy has not registered with the admin yet')),
      logger: proxyLogger,
    });
    // Patterns with isolation namespace|pattern run in launched runner processes (issue 17).
    const launcher = new Launcher({ logger: proxyLogger, dataDir });
    stops.push(() => launcher.stop());
    const table = new NamespaceTable(
      isolatedRunners(inProcessRunners({ dataDir, credentials: envCredentials, schemas }), launcher),
      proxyLogger,
    );
    const proxy = new ProxyServer({
      registerMetrics: (registry) => launcher.register(registry),
      httpRoutes: [runnersRoute(launcher)],
      listen: `${host}:${ports.proxy}`,
      metricsListen: `${host}:${ports.proxyMetrics}`,
      table,
      logger: proxyLogger,
      authDisabled: true,
      drainTimeoutMs: 2000,
      tls: serverTls,
    });
    stops.push(() => proxy.stop());
    await proxy.start();
    const source = new AdminSource(
      `${host}:${ports.admin}`,
      { id: PROXY_ID, address: `${host}:${ports.proxy}`, version: options.version },
      table,
      proxyLogger,
      undefined,
      clientTls,
    );
    registered.source = source;
    source.reportKpis(() => proxy.kpis());
    stops.push(() => source.stop());
    await source.start();
    const missing = applied.filter((n) => !table.names().includes(n));
    if (missing.length > 0) throw new Error(`the proxy could not serve ${missing.join(', ')}; see the log`);
    const warm = setTimeout(() => {
      idp.warm().then(
        () => logger.child({ component: 'idp' }).info({ issuer }, 'development identity provider ready'),
        (err: unknown) =>
          logger.child({ component: 'idp' }).error({ err }, 'development identity provider failed'),
      );
    }, 1500);
    warm.unref();
    stops.push(async () => clearTimeout(warm));
    logger.info({ namespaces: applied }, 'embedded stack ready');
    return { applied, issuer, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
