import { Flags } from '@oclif/core';
import { hostname } from 'node:os';
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
import { dialTarget } from '../../transport/dial.js';
import { isLoopbackHost } from '../../transport/listen-address.js';
import { prismHome } from '../../config/home.js';
import { AdminSource } from '../../proxy/admin-source.js';
import { PeerChannels } from '../../proxy/forward.js';
import { RouteTable } from '../../proxy/routes.js';
import { loadServedNamespaces } from '../../admin/local-namespaces.js';
import {
  absorbRepeatedSignals,
  isClusterWorker,
  notifyWorkerReady,
  releaseWorker,
  parseWorkers,
  runPrimary,
  workerIndex,
  workerMetricsListen,
} from '../../proxy/cluster.js';
import { inProcessRunners, NamespaceTable } from '../../proxy/namespace-table.js';
import { DEFAULT_V8_FLAGS, forkWorkersWith, parseV8Flags, restartWith } from '../../proxy/v8-flags.js';
import {
  DEFAULT_MALLOC_TUNABLES,
  mallocEnvironment,
  parseMallocTunables,
} from '../../proxy/malloc-tunables.js';
import { ProxyServer } from '../../proxy/server.js';
import { adminTokenSource } from '../../auth/admin-token.js';
import { proxyAuthenticator } from '../../auth/proxy-authenticate.js';
import { PrismError, UsageError } from '../../errors.js';
import { parseSize } from '../../config/units.js';
import { PolicyAuthorizer } from '../../auth/policy/authorizer.js';
import { vaultCredentials, vaultFlags, vaultSettingsFromFlags } from '../../auth/vault-credentials.js';
import { RequestSessions } from '../../auth/request-sessions.js';
import { durationSeconds } from '../../cli/values.js';
import { parseDuration } from '../../config/units.js';
import { SchemaCache } from '../../runners/payload/schema-source.js';
import { Launcher } from '../../proxy/launcher/launcher.js';
import { isolatedRunners } from '../../proxy/launcher/isolated-runners.js';
import { runnersRoute } from '../../proxy/launcher/runners-route.js';

export default class ProxyServe extends BaseCommand {
  static override summary = 'Run the Prism proxy: the data plane entry point';
  static override description = `Serves prism.data.v1 KeyValue, Producer and Consumer, routed by the x-prism-namespace metadata key to pattern runners, and /healthz, /readyz, /metrics and /runners over HTTP. Runners run in this process, or, for patterns with isolation namespace or pattern, in runner processes it launches, supervises and stops (docs/architecture.md, "Isolation and the launcher"; prismctl runner list shows them).
With --admin it registers with the control plane, heartbeats, and serves the namespaces its partitions own, picking up changes without a restart. With --namespaces it serves local namespace files.
On SIGTERM it drains: new calls get UNAVAILABLE, in-flight calls finish, subscriptions end, then it exits 0.
With --workers N (or auto: one per CPU) a primary process forks N workers that share the gRPC port (connections are balanced between workers, not calls); worker i serves HTTP on the metrics port + i (with port 0, each worker gets its own free port); SIGTERM to the primary drains every worker, then it exits 0.`;
  static override examples = [
    '<%= config.bin %> proxy serve --admin localhost:8981',
    '<%= config.bin %> proxy serve --namespaces examples/namespaces/',
    '<%= config.bin %> proxy serve --namespaces examples/namespaces/ --workers auto',
    '<%= config.bin %> proxy serve --admin grpcs://admin.internal:8981 --admin-ca-file ca.pem --admin-tls-client-cert proxy.pem --admin-tls-client-key proxy-key.pem --tls-cert proxy-server.pem --tls-key proxy-server-key.pem',
  ];
  static override flags = {
    ...patternModuleFlag,
    listen: Flags.string({ description: 'gRPC listen address', default: '127.0.0.1:50090' }),
    ...serverTlsFlags,
    ...vaultTlsFlags,
    'metrics-listen': Flags.string({
      description: 'HTTP listen address for /healthz, /readyz and /metrics',
      default: '127.0.0.1:50091',
    }),
    admin: Flags.string({
      description:
        'Control-plane endpoint to follow: host:port, or grpcs://host:port for TLS. Repeat it (or separate with commas) for several admins sharing one store: the proxy fails over between them (docs/fleet.md)',
      exactlyOne: ['admin', 'namespaces'],
      multiple: true,
      delimiter: ',',
    }),
    'peer-ca-file': Flags.string({
      description:
        "PEM CA certificate(s) the other proxies' certificates chain to, for calls this proxy forwards to a namespace's owner (default: the system's roots); used when this proxy serves TLS",
      dependsOn: ['admin'],
      helpGroup: 'TLS',
    }),
    'peer-tls-client-cert': Flags.string({
      description:
        'PEM client certificate this proxy shows the other proxies when they require one (--tls-client-ca) as it forwards calls (default: --tls-cert, which must then allow client authentication)',
      dependsOn: ['admin', 'peer-tls-client-key'],
      helpGroup: 'TLS',
    }),
    'peer-tls-client-key': Flags.string({
      description: 'PEM private key of --peer-tls-client-cert',
      dependsOn: ['peer-tls-client-cert'],
      helpGroup: 'TLS',
    }),
    'admin-token-file': Flags.string({
      description:
        'File (mode 0600) with the bearer token shown to an auth-enabled admin; read again on every call (default: $PRISM_ADMIN_TOKEN, then the service identity JWT)',
      dependsOn: ['admin'],
    }),
    'admin-ca-file': Flags.string({
      description: "PEM CA certificate(s) the admin's certificate must chain to; implies TLS to the admin",
      env: 'PRISM_TLS_CA_FILE',
      dependsOn: ['admin'],
      helpGroup: 'TLS',
    }),
    'admin-tls-server-name': Flags.string({
      description:
        "Name the admin's certificate must carry, when it differs from the --admin host; implies TLS",
      dependsOn: ['admin'],
      helpGroup: 'TLS',
    }),
    'admin-tls-client-cert': Flags.string({
      description: 'PEM client certificate shown to an admin that requires one (mTLS); implies TLS',
      dependsOn: ['admin', 'admin-tls-client-key'],
      helpGroup: 'TLS',
    }),
    'admin-tls-client-key': Flags.string({
      description: 'PEM private key of --admin-tls-client-cert',
      dependsOn: ['admin-tls-client-cert'],
      helpGroup: 'TLS',
    }),
    namespaces: Flags.string({ description: 'Namespace file or directory to serve', multiple: true }),
    backends: Flags.string({
      description: 'Backends catalog for --namespaces (default: local endpoints)',
      dependsOn: ['namespaces'],
    }),
    'proxy-id': Flags.string({
      description: 'Stable id of this proxy for partition ownership (default: <host>-<port>)',
    }),
    advertise: Flags.string({ description: 'Address clients use to reach this proxy (default: --listen)' }),
    'schema-ttl': Flags.string({
      description:
        "How long a producer enforces a schema subject's latest version before asking the admin again (docs/schemas.md, Enforcement)",
      default: '30s',
    }),
    'policy-log-sample': Flags.string({
      description:
        'Share of allowed policy decisions to log, 0 to 1 (every denial is logged; docs/policies.md)',
      default: '0.01',
    }),
    'no-auth': Flags.boolean({
      description: 'Serve namespaces that enable auth without verifying tokens (local work only)',
    }),
    'max-message-size': Flags.string({
      description:
        'Largest gRPC message the proxy takes or sends (a Publish payload, a delivery), e.g. 256MiB; larger ones get RESOURCE_EXHAUSTED. Payloads above a few MiB need a claim_check on the producer',
      default: '4MiB',
    }),
    'max-payload-size': Flags.string({
      description:
        'Largest payload a chunked publish (PublishUpload, `publish --file`) may carry, e.g. 1GiB; larger ones get RESOURCE_EXHAUSTED. With a claim_check the proxy streams it to the object store without holding it',
      default: '256MiB',
    }),
    'drain-timeout': Flags.integer({
      description: 'Milliseconds to wait for in-flight calls on SIGTERM',
      default: 10_000,
    }),
    workers: Flags.string({
      description:
        'Worker processes sharing the gRPC port: a number or auto (one per CPU); worker i serves HTTP on the metrics port + i',
      default: '1',
    }),
    'v8-flags': Flags.string({
      description: `V8 options (and Node's --v8-pool-size) of every process that serves calls: each worker and each launched runner process starts with them, and with --workers 1 the proxy restarts itself once with them before it opens anything (same pid). The default, chosen by measurement, bounds the young generation (short scavenges, a smaller RSS) and gives V8 one background thread (a shorter tail) (docs/architecture.md, "The data plane"); '' leaves V8's and Node's defaults`,
      default: DEFAULT_V8_FLAGS,
      env: 'PRISM_PROXY_V8_FLAGS',
    }),
    'malloc-tunables': Flags.string({
      description: `glibc malloc tunables (GLIBC_TUNABLES) of every process that serves calls, applied as --v8-flags are. The default keeps freed memory for reuse (up to 256 MiB of it), so that large messages do not fault in fresh pages each time (docs/architecture.md, "The data plane"); '' leaves glibc's defaults`,
      default: DEFAULT_MALLOC_TUNABLES,
      env: 'PRISM_PROXY_MALLOC_TUNABLES',
    }),
    'runner-tls-ca': Flags.string({
      description:
        'PEM CA of the remote runners (patterns with remote_runner) this proxy reaches over mutual TLS',
      dependsOn: ['runner-tls-cert'],
    }),
    'runner-tls-cert': Flags.string({
      description: 'PEM client certificate this proxy shows to remote runners',
      dependsOn: ['runner-tls-key', 'runner-tls-ca'],
    }),
    'runner-tls-key': Flags.string({
      description: 'PEM private key of --runner-tls-cert (keep it 0600)',
      dependsOn: ['runner-tls-cert'],
    }),
    'runner-max-old-space': Flags.integer({
      description:
        'Memory cap of each launched runner process (isolation namespace or pattern): its V8 --max-old-space-size, MiB (default: V8 default)',
      min: 16,
    }),
    'log-level': logLevelFlag,
    ...vaultFlags,
    'caller-session-ttl': Flags.string({
      description:
        'Longest life of a caller session (keyvalue with Vault: the caller’s own Vault login and backend user); never beyond the token’s expiry',
      default: '15m',
      helpGroup: 'VAULT',
    }),
    'caller-session-idle': Flags.string({
      description: 'A caller session unused this long is closed and its backend user revoked',
      default: '5m',
      helpGroup: 'VAULT',
    }),
    'caller-session-sweep': Flags.string({
      description:
        'How often the caller-session stores are swept: idle, expired and revoked sessions end, and sessions of a proxy that died are revoked (default: half the idle timeout, 1s to 10s)',
      helpGroup: 'VAULT',
    }),
    'max-caller-sessions': Flags.integer({
      description: 'Most live caller sessions; the least recently used is closed (and revoked) first',
      default: 1000,
      min: 1,
      helpGroup: 'VAULT',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ProxyServe);
    const v8Flags = parseV8Flags(flags['v8-flags']);
    const mallocEnv = mallocEnvironment(parseMallocTunables(flags['malloc-tunables']));
    const workers = parseWorkers(flags.workers);
    // V8 sizes its heap and glibc reads its tunables at start: a single-process proxy restarts
    // itself with them here, before it opens or logs anything; cluster workers are forked with them.
    const v8 = workers === 1 && !isClusterWorker() ? restartWith(v8Flags, mallocEnv) : 'running';
    await loadPatternModules(flags['pattern-module']);
    const maxMessage = maxMessageBytes(flags['max-message-size']);
    const maxPayload = maxPayloadBytes(flags['max-payload-size']);
    checkPlaintextListen(
      flags,
      [
        ['--listen', flags.listen],
        ['--metrics-listen', flags['metrics-listen']],
      ],
      createLogger('prism-proxy', { level: flags['log-level'] }),
    );
    if (workers > 1 && !isClusterWorker()) {
      const logger = createLogger('prism-proxy', { level: flags['log-level'] });
      forkWorkersWith(v8Flags, mallocEnv);
      const code = await runPrimary({
        workers,
        metricsListen: flags['metrics-listen'],
        logger,
        drainTimeoutMs: flags['drain-timeout'],
      });
      if (code !== 0) this.exit(code);
      return;
    }
    const rootLogger = createLogger('prism-proxy', { level: flags['log-level'] });
    const logger = isClusterWorker() ? rootLogger.child({ worker: workerIndex() }) : rootLogger;
    if (v8 === 'unsupported')
      logger.warn(
        { v8Flags, mallocTunables: mallocEnv.GLIBC_TUNABLES },
        'this Node.js cannot restart a process (process.execve: Node >= 22.15, not on Windows): serving without --v8-flags and --malloc-tunables; set them in NODE_OPTIONS and GLIBC_TUNABLES instead',
      );
    const dataDir = join(prismHome(), 'data');
    // Vault (#7): service-identity sessions for producer/consumer slots, revoked with their runner
    // or on stop; with auth on, keyvalue stores connect per caller with the caller's own session.
    const vaultSettings = vaultSettingsFromFlags(flags);
    // Identity (#7): an auth-enabled admin registers only proxies whose token it grants `proxy`;
    // a token file with loose permissions is refused here, before anything starts.
    const adminToken = flags.admin
      ? adminTokenSource({
          ...(flags['admin-token-file'] !== undefined ? { file: flags['admin-token-file'] } : {}),
          ...(flags['vault-jwt-file'] !== undefined ? { jwtFile: flags['vault-jwt-file'] } : {}),
        })
      : undefined;
    const vault = vaultCredentials(vaultSettings, { logger });
    const requestSessions: RequestSessions | undefined = flags['no-auth']
      ? undefined
      : new RequestSessions({
          defaults: vaultSettings,
          ttlMs: durationSeconds(flags['caller-session-ttl'], 'caller-session-ttl') * 1000,
          idleMs: durationSeconds(flags['caller-session-idle'], 'caller-session-idle') * 1000,
          maxSessions: flags['max-caller-sessions'],
          ...(flags['caller-session-sweep'] !== undefined
            ? { sweepMs: durationSeconds(flags['caller-session-sweep'], 'caller-session-sweep') * 1000 }
            : {}),
          stores: () => table.sessionStores(),
          service: (scope) => vault.session(scope),
          logger,
        });
    // Producers with a `schema` setting ask the admin (the schema registry) through `source`,
    // which exists once the proxy registered; until then and without --admin a fetch is refused.
    let source: AdminSource | undefined;
    const schemas = new SchemaCache({
      ttlMs: schemaTtlMs(flags['schema-ttl']),
      fetch: (subject) =>
        source
          ? source.latestSchema(subject)
          : Promise.reject(new PrismError('E_UNAVAILABLE', 'this proxy has no admin to fetch schemas from')),
      logger,
    });
    // Isolation (#17): patterns with isolation namespace|pattern run in launched processes.
    const launcher = new Launcher({
      logger,
      maxOldSpaceMb: flags['runner-max-old-space'],
      v8Flags,
      logLevel: flags['log-level'],
      dataDir,
    });
    const table = new NamespaceTable(
      isolatedRunners(
        inProcessRunners({
          dataDir,
          credentials: vault.resolve,
          vault: { session: (scope) => vault.session(scope), defaults: vaultSettings },
          callerSessions: requestSessions !== undefined,
          schemas,
        }),
        launcher,
        flags['runner-tls-cert']
          ? {
              caFile: flags['runner-tls-ca']!,
              certFile: flags['runner-tls-cert'],
              keyFile: flags['runner-tls-key']!,
            }
          : undefined,
      ),
      logger,
    );
    const serverTls = await serverTlsWithVault(
      flags,
      flags.listen,
      join(prismHome(), 'tls', `proxy-${process.pid}`),
      logger,
    );
    const policies = new PolicyAuthorizer({
      logger,
      allowLogSampleRate: sampleRate(flags['policy-log-sample']),
    });
    // Fleet (#23): a call for a namespace another proxy owns is forwarded to it, over this proxy's
    // TLS, presenting this proxy's certificate when it requires client certificates (mTLS).
    const proxyId = flags['proxy-id'];
    const fleet = flags.admin
      ? {
          routes: new RouteTable(proxyId ?? ''),
          peers: new PeerChannels(
            serverTls.tls
              ? {
                  tls: true,
                  caFile: flags['peer-ca-file'],
                  ...(serverTls.tls.clientCaFile !== undefined
                    ? {
                        certFile: flags['peer-tls-client-cert'] ?? serverTls.tls.certFile,
                        keyFile: flags['peer-tls-client-key'] ?? serverTls.tls.keyFile,
                      }
                    : {}),
                  followFiles: flags['peer-ca-file'] !== undefined,
                }
              : undefined,
          ),
        }
      : undefined;
    const server = new ProxyServer({
      listen: flags.listen,
      metricsListen: workerMetricsListen(flags['metrics-listen']),
      table,
      logger,
      // Identity (#7): tokens verified against each auth-enabled namespace's issuer and access.
      authenticate: flags['no-auth'] ? undefined : proxyAuthenticator({ policies }),
      registerMetrics: (registry) => {
        policies.register(registry);
        launcher.register(registry);
      },
      httpRoutes: [runnersRoute(launcher)],
      authDisabled: flags['no-auth'],
      drainTimeoutMs: flags['drain-timeout'],
      maxMessageBytes: maxMessage,
      maxPayloadBytes: maxPayload,
      tls: serverTls.tls,
      ...(requestSessions ? { requestSessions } : {}),
      ...(fleet ? { fleet } : {}),
    });
    if (flags.namespaces) {
      await table.reconcile(await loadServedNamespaces(flags.namespaces, { backends: flags.backends }));
    }
    try {
      await server.start();
    } catch (err) {
      serverTls.stop();
      await launcher.stop();
      throw err;
    }
    requestSessions?.start();
    notifyWorkerReady(server.port, server.httpPort);
    if (flags.admin) {
      const address = flags.advertise ?? `${flags.listen.replace(/:\d+$/, '')}:${server.port}`;
      logger.info({ admin: flags.admin, tokenSource: adminToken?.source }, 'admin token');
      const adminTls = {
        caFile: flags['admin-ca-file'],
        serverName: flags['admin-tls-server-name'],
        certFile: flags['admin-tls-client-cert'],
        keyFile: flags['admin-tls-client-key'],
        followFiles: true,
      };
      for (const admin of flags.admin) {
        const adminTarget = dialTarget(admin, adminTls);
        if (adminToken && !adminTarget.tls && !isLoopbackHost(adminTarget.endpoint.host)) {
          logger.warn(
            { admin },
            'the admin token goes to the admin in clear text: dial grpcs:// (with --admin-ca-file) off this machine',
          );
        }
      }
      fleet!.routes.selfId = proxyId ?? `${hostname()}-${server.port}`;
      source = new AdminSource(
        flags.admin,
        { id: fleet!.routes.selfId, address, version: this.config.version },
        table,
        logger,
        adminToken,
        adminTls,
        (global) => policies.setGlobalPolicies(global),
      );
      source.reportKpis(() => server.kpis());
      source.onRoutes = (routes) => {
        fleet!.routes.update(routes);
        fleet!.peers.retain(fleet!.routes.addresses());
      };
      try {
        await source.start();
      } catch (err) {
        // Refused or unreachable at start: close what was opened, then report the reason.
        await source.stop();
        await server.stop();
        await launcher.stop();
        serverTls.stop();
        await vault?.close().catch(() => undefined);
        throw err;
      }
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
      if (isClusterWorker()) absorbRepeatedSignals();
    });
    if (source && (await source.leave())) {
      // Hand-over: the live proxies take the partitions at their next heartbeat; serve until then.
      const handoverMs = Math.min(2 * source.heartbeatIntervalMs, flags['drain-timeout']);
      logger.info({ handoverMs }, 'handing over partitions');
      await new Promise((resolve) => setTimeout(resolve, handoverMs));
    }
    await source?.stop();
    await server.stop();
    await launcher.stop();
    serverTls.stop();
    await vault
      .close()
      .catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'vault revoke failed'));
    releaseWorker();
  }
}

function schemaTtlMs(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms === Infinity)
    throw new PrismError('E_USAGE', `--schema-ttl '${value}' is not a duration`, {
      hint: 'for example 30s or 500ms',
    });
  return ms;
}

function sampleRate(value: string): number {
  const rate = Number(value);
  if (value.trim() === '' || !Number.isFinite(rate) || rate < 0 || rate > 1)
    throw new PrismError('E_USAGE', `--policy-log-sample '${value}' is not a number from 0 to 1`);
  return rate;
}

/** --max-payload-size in bytes: a size from 1 KiB up (a payload is a Number of bytes). */
function maxPayloadBytes(text: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined || bytes < 1024 || !Number.isSafeInteger(bytes)) {
    throw new UsageError(
      `--max-payload-size ${JSON.stringify(text)} is not a size of 1KiB or more`,
      'for example --max-payload-size 1GiB',
    );
  }
  return bytes;
}

/** --max-message-size in bytes: a size (512KiB, 256MiB) from 1 KiB to 2 GiB - 1 (grpc-js's ceiling). */
function maxMessageBytes(text: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined || bytes < 1024 || bytes > 2 ** 31 - 1) {
    throw new UsageError(
      `--max-message-size ${JSON.stringify(text)} is not a size from 1KiB to 2GiB`,
      'for example --max-message-size 256MiB',
    );
  }
  return bytes;
}
