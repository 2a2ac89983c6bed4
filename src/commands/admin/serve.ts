import { Flags } from '@oclif/core';
import { join } from 'node:path';
import { createLogger } from '../../logging.js';
import { logLevelFlag } from '../../cli/log-flags.js';
import { BaseCommand } from '../../cli/base-command.js';
import { patternModuleFlag } from '../../cli/pattern-module-flag.js';
import { loadPatternModules } from '../../config/external-patterns.js';
import {
  checkPlaintextListen,
  serverTlsFlags,
  serverTlsWithVault,
  vaultTlsFlags,
} from '../../cli/tls-flags.js';
import { defaultCatalog, loadCatalog } from '../../admin/catalog.js';
import { openStore } from '../../admin/open-store.js';
import { AdminServer } from '../../admin/server.js';
import { adminAuthenticator } from '../../auth/admin-authenticate.js';
import { PolicyAuthorizer } from '../../auth/policy/authorizer.js';
import { loadPolicyFiles } from '../../auth/policy/policy-files.js';
import { prismHome } from '../../config/home.js';
import { PrismError } from '../../errors.js';

export default class AdminServe extends BaseCommand {
  static override summary = 'Run the Prism control plane (prism admin)';
  static override description = `Serves prism.admin.v1.ControlPlane and grpc.health.v1 over gRPC, and /healthz, /readyz, /metrics and the web console (/console, see docs/console.md) over HTTP. Stores namespaces in SQLite under the prism home by default, or in PostgreSQL when --store is a postgres:// URL (several admins may share it). Stops cleanly on SIGINT/SIGTERM.`;
  static override examples = [
    '<%= config.bin %> admin serve',
    '<%= config.bin %> admin serve --store postgres://prism@db:5432/prism --backends backends.yaml',
    '<%= config.bin %> admin serve --tls-cert admin.pem --tls-key admin-key.pem --tls-client-ca clients-ca.pem',
  ];
  static override flags = {
    ...patternModuleFlag,
    listen: Flags.string({ description: 'gRPC listen address', default: '127.0.0.1:8981' }),
    policies: Flags.string({
      description:
        'Global Cedar policies: a .cedar file or a directory of them (docs/policies.md §9). They decide control-plane calls (with --auth-issuer) and are sent to proxies, which evaluate them with every namespace',
      multiple: true,
    }),
    ...serverTlsFlags,
    ...vaultTlsFlags,
    'metrics-listen': Flags.string({
      description: 'HTTP listen address for /healthz, /readyz and /metrics',
      default: '127.0.0.1:8982',
    }),
    store: Flags.string({
      description: 'SQLite file path or postgres:// URL (default: <prism home>/admin.db)',
      env: 'PRISM_ADMIN_STORE',
    }),
    'store-schema': Flags.string({
      description: 'PostgreSQL schema for the tables (default public)',
      env: 'PRISM_ADMIN_STORE_SCHEMA',
    }),
    backends: Flags.string({
      description: 'YAML file listing backend instances per backend type (default: one local instance each)',
    }),
    'heartbeat-interval': Flags.integer({
      description: 'Milliseconds between proxy heartbeats',
      default: 2000,
      min: 100,
    }),
    'missed-heartbeats': Flags.integer({
      description:
        'Heartbeat intervals a proxy may miss before its partitions move to the live proxies (docs/fleet.md)',
      default: 3,
      min: 2,
    }),
    'log-level': logLevelFlag,
    // Identity: without --auth-issuer auth is off, and the server says so at start.
    'auth-issuer': Flags.string({
      description: 'OIDC issuer whose JWTs callers must present; without it auth is off (logged at start)',
      env: 'PRISM_ADMIN_AUTH_ISSUER',
      helpGroup: 'AUTH',
    }),
    'auth-audience': Flags.string({
      description: 'Accepted token audience (repeatable)',
      multiple: true,
      dependsOn: ['auth-issuer'],
      helpGroup: 'AUTH',
    }),
    'auth-admin-group': Flags.string({
      description: 'Group whose members may read and write namespaces (repeatable)',
      multiple: true,
      dependsOn: ['auth-issuer'],
      helpGroup: 'AUTH',
    }),
    'auth-reader-group': Flags.string({
      description: 'Group whose members may get, list, export and see history (repeatable)',
      multiple: true,
      dependsOn: ['auth-issuer'],
      helpGroup: 'AUTH',
    }),
    'auth-proxy-group': Flags.string({
      description: 'Group whose members may register proxies and send heartbeats (repeatable)',
      multiple: true,
      dependsOn: ['auth-issuer'],
      helpGroup: 'AUTH',
    }),
    'console-client-id': Flags.string({
      description: 'OIDC public client the web console logs people in as (authorization code + PKCE)',
      default: 'prismctl',
      helpGroup: 'CONSOLE',
    }),
    'console-url': Flags.string({
      description:
        'Public base URL of the console (its login callback is <url>/console/callback); default: the URL the browser used',
      helpGroup: 'CONSOLE',
    }),
    'auth-scope-mapping': Flags.boolean({
      description: 'Also grant by token scope: prism:read, prism:write, prism:proxy',
      dependsOn: ['auth-issuer'],
      helpGroup: 'AUTH',
    }),
    'no-auth': Flags.boolean({
      description:
        'Serve without authenticating callers (local work only; otherwise --auth-issuer is required)',
      exclusive: ['auth-issuer'],
      helpGroup: 'AUTH',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(AdminServe);
    await loadPatternModules(flags['pattern-module']);
    if (!flags['auth-issuer'] && !flags['no-auth']) {
      throw new PrismError(
        'E_USAGE',
        'the admin will not serve without authentication unless you say so: anyone who can reach it could apply and delete namespaces',
        {
          hint: 'pass --auth-issuer <OIDC issuer URL> (see docs/identity.md), or --no-auth for a control plane only you can reach',
        },
      );
    }
    const logger = createLogger('prism-admin', { level: flags['log-level'] });
    checkPlaintextListen(
      flags,
      [
        ['--listen', flags.listen],
        ['--metrics-listen', flags['metrics-listen']],
      ],
      logger,
    );
    const catalog = flags.backends ? await loadCatalog(flags.backends) : defaultCatalog();
    const store = await openStore(flags.store ?? join(prismHome(), 'admin.db'), {
      schema: flags['store-schema'],
    });
    const serverTls = await serverTlsWithVault(
      flags,
      flags.listen,
      join(prismHome(), 'tls', `admin-${process.pid}`),
      logger,
    );
    const policies = flags.policies ? loadPolicyFiles(flags.policies) : [];
    const authorizer = new PolicyAuthorizer({ logger });
    const server = new AdminServer({
      listen: flags.listen,
      metricsListen: flags['metrics-listen'],
      store,
      catalog,
      logger,
      heartbeatIntervalMs: flags['heartbeat-interval'],
      missedHeartbeats: flags['missed-heartbeats'],
      tls: serverTls.tls,
      console: {
        login: flags['auth-issuer']
          ? { issuer: flags['auth-issuer'], clientId: flags['console-client-id'] }
          : undefined,
        publicUrl: flags['console-url'],
      },
      authenticate: flags['auth-issuer']
        ? adminAuthenticator({
            issuer: flags['auth-issuer'],
            audiences: flags['auth-audience'] ?? [],
            adminGroups: flags['auth-admin-group'],
            readerGroups: flags['auth-reader-group'],
            proxyGroups: flags['auth-proxy-group'],
            scopeMapping: flags['auth-scope-mapping'],
            policies,
            authorizer,
          })
        : undefined,
      registerMetrics: (registry) => authorizer.register(registry),
      globalPolicies: policies,
    });
    try {
      await server.start();
    } catch (err) {
      serverTls.stop();
      throw err;
    }
    if (flags['auth-issuer'])
      logger.info({ issuer: flags['auth-issuer'], audiences: flags['auth-audience'] }, 'auth is on');
    if (policies.length > 0)
      logger.info(
        { policies: policies.map((p) => p.id), controlPlane: flags['auth-issuer'] !== undefined },
        'global policies loaded',
      );
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ signal }, 'stopping');
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.stop();
    serverTls.stop();
    logger.info('stopped');
  }
}
