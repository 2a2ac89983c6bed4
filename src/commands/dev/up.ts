import { Flags } from '@oclif/core';
import { spawn } from 'node:child_process';
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BaseCommand } from '../../cli/base-command.js';
import { PrismError } from '../../errors.js';
import { createProgress } from '../../cli/progress.js';
import { prismHome } from '../../config/home.js';
import { loadStackConfig } from '../../localstack/catalog.js';
import { defaultNamespacePaths, dockerNamespacePaths } from '../../localstack/defaults.js';
import { describeTried, findEngine } from '../../localstack/docker.js';
import type { DockerUpResult } from '../../localstack/docker-up.js';
import type { DevTlsFiles } from '../../localstack/dev-tls.js';
import { dockerStackFlags, portsFrom, stackFlags } from '../../localstack/flags.js';
import { stackHealth } from '../../localstack/health.js';
import {
  checkPorts,
  DEFAULT_DEV_PORTS,
  describePortProblem,
  portSpecs,
  type DevPorts,
} from '../../localstack/ports.js';
import {
  embeddedLogFile,
  persistentDataDir,
  endpoints,
  readState,
  removeState,
  stackAlive,
  tailLog,
  uptime,
  type DevState,
} from '../../localstack/state.js';

export default class DevUp extends BaseCommand {
  static override summary =
    'Start the local Prism stack: Docker (Vault, Dex, Redis, NATS, Kafka, PostgreSQL) or, without Docker, the embedded one';
  static override description = `With a Docker engine, starts the components of templates/dev/components.yaml (changed by <prism home>/dev.yaml and flags) as containers labelled with the stack, in parallel in dependency order, gated on real probes; bootstraps PostgreSQL, Dex and Vault; starts the bundled admin and proxy under a background supervisor; applies examples/namespaces/ (those the stack can serve); and returns once the proxy serves them. A second run reports what is running and starts only what is missing.
Without an engine it says so and starts the embedded stack instead: admin, proxy, memstore and sqlite in one process (--embedded forces it, --docker refuses to fall back).
State is kept in <prism home>/dev/state.json and logs in <prism home>/dev/logs/.`;
  static override examples = [
    '<%= config.bin %> dev up',
    '<%= config.bin %> dev up --components redis,postgres --network host',
    '<%= config.bin %> dev up --image redis=registry.local/redis:7 --port redis=16379',
    '<%= config.bin %> dev up --embedded --persist',
    '<%= config.bin %> dev up --foreground --proxy-port 50190',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    ...stackFlags,
    ...dockerStackFlags,
    embedded: Flags.boolean({
      description: 'Run the embedded stack without asking for a Docker engine',
      exclusive: ['docker'],
    }),
    docker: Flags.boolean({ description: 'Require the Docker stack; never fall back to the embedded one' }),
    tls: Flags.boolean({
      description:
        'Serve the admin and proxy (gRPC and HTTP status ports) over TLS with a local CA kept in <prism home>/dev/tls/; --no-tls serves plaintext',
      default: true,
      allowNo: true,
    }),
    foreground: Flags.boolean({
      description: 'Stay attached, stream logs, and stop everything on Ctrl-C or SIGTERM',
    }),
    'wait-timeout': Flags.integer({
      description: 'Seconds to wait for the stack to be ready',
      default: 120,
      min: 1,
    }),
  };

  async run(): Promise<object> {
    const { flags } = await this.parse(DevUp);
    const started = performance.now();

    const existing = readState();
    const alive = existing !== undefined && stackAlive(existing.pid);
    if (alive && existing.stack === 'docker' && flags.embedded) {
      throw new PrismError('E_UNAVAILABLE', `the Docker stack '${existing.docker?.name}' is running`, {
        hint: 'stop it with `prismctl dev down` before starting the embedded stack',
      });
    }
    if (alive && existing.stack === 'embedded') {
      if (flags.docker) {
        throw new PrismError('E_UNAVAILABLE', `the embedded stack (pid ${existing.pid}) is running`, {
          hint: 'stop it with `prismctl dev down` before starting the Docker stack',
        });
      }
      const health = await stackHealth(existing);
      if (health.healthy && existing.phase === 'ready') {
        this.log(
          `The embedded stack is already running and healthy (pid ${existing.pid}, up ${uptime(existing)}); nothing was started.`,
        );
        this.printEndpoints(existing);
        return { stack: 'embedded', alreadyRunning: true, state: existing };
      }
      throw new PrismError(
        'E_UNAVAILABLE',
        `the embedded stack (pid ${existing.pid}) is running but not healthy: admin ${health.admin.healthy ? 'ok' : health.admin.detail}, proxy ${health.proxy.healthy ? 'ready' : health.proxy.detail}`,
        { hint: 'see `prismctl dev logs`, then `prismctl dev down` and `prismctl dev up`' },
      );
    }
    if (existing && !alive) removeState();

    if (!flags.embedded) {
      if (alive && existing.stack === 'docker' && existing.docker) {
        return this.upDocker(existing.docker.engine, flags, started, await this.devTls(flags.tls));
      }
      const { found, tried } = await findEngine();
      if (found) return this.upDocker(found.target, flags, started, await this.devTls(flags.tls));
      if (flags.docker) {
        throw new PrismError(
          'E_UNAVAILABLE',
          `no Docker engine answered (tried ${describeTried(tried)}) and --docker does not fall back`,
          {
            hint: 'start Docker or set DOCKER_HOST, or run `prismctl dev up --embedded` for the in-process stack',
          },
        );
      }
      this.log(
        `No Docker engine answered (tried ${describeTried(tried)}), so this is the embedded stack: admin, proxy, memstore and sqlite in one process.`,
      );
    }
    return this.upEmbedded(flags, started);
  }

  /** The local CA and server certificate (made once, then reused), or undefined with --no-tls. */
  private async devTls(on: boolean): Promise<DevTlsFiles | undefined> {
    if (!on) return undefined;
    const { ensureDevCertificates } = await import('../../localstack/dev-tls.js');
    const { created, ...files } = await ensureDevCertificates();
    if (created)
      this.log(`Created a local CA and a server certificate for localhost in ${dirname(files.caFile)}.`);
    return files;
  }

  private async upDocker(
    engine: string,
    f: DockerUpFlags,
    started: number,
    tls: DevTlsFiles | undefined,
  ): Promise<object> {
    const config = loadStackConfig({
      packageRoot: this.config.root,
      configFile: f.config ?? join(prismHome(), 'dev.yaml'),
      configRequired: f.config !== undefined,
      overrides: {
        ...(f.stack !== undefined ? { stack: f.stack } : {}),
        ...(f.network !== undefined ? { network: f.network as 'bridge' | 'host' } : {}),
        ...(f.components !== undefined ? { only: f.components } : {}),
        ...(f.image !== undefined ? { images: f.image } : {}),
        ...(f.port !== undefined ? { ports: f.port } : {}),
      },
    });
    const namespacePaths = (f.namespaces ?? dockerNamespacePaths(this.config.root)).map((p) => resolve(p));
    const names = [...config.components.map((c) => c.name), 'admin', 'proxy'];
    const progress = await createProgress(names, {
      tty: Boolean(process.stderr.isTTY) && !this.jsonEnabled(),
      write: (line) => this.logToStderr(line),
    });
    const { dockerUp } = await import('../../localstack/docker-up.js');
    let result: DockerUpResult;
    try {
      result = await dockerUp({
        packageRoot: this.config.root,
        version: this.config.version,
        engine,
        config,
        ports: portsFrom(f),
        waitTimeoutMs: f['wait-timeout'] * 1000,
        keepOnFailure: f['keep-on-failure'] === true,
        namespacePaths,
        events: progress.events,
        tls,
      });
    } catch (err) {
      await progress.finish(true);
      throw err;
    }
    await progress.finish();
    this.announceDocker(result, started);
    if (f.foreground) {
      const { runAttached } = await import('../../localstack/foreground.js');
      this.log('Streaming the admin and proxy logs; press Ctrl-C to stop the stack.');
      await runAttached(result.state, (line: string) => this.log(line));
      this.log('Stopped the Docker stack; its volumes stay (`prismctl dev down --volumes` removes them).');
    }
    return {
      stack: 'docker',
      name: config.stack,
      engine,
      network: config.network,
      readySeconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      components: result.components,
      bootstrap: result.bootstrap,
      endpoints: endpoints(result.state),
      namespaces: result.state.namespaces,
      skipped: result.skipped,
    };
  }

  private async upEmbedded(flags: EmbeddedUpFlags, started: number): Promise<object> {
    const ports = portsFrom(flags);
    const problems = await checkPorts(portSpecs(ports));
    if (problems.length > 0) {
      throw new PrismError('E_UNAVAILABLE', problems.map((p) => describePortProblem(p)).join('; '), {
        hint: 'nothing was started',
      });
    }
    const namespacePaths = (flags.namespaces ?? defaultNamespacePaths(this.config.root)).map((p) =>
      resolve(p),
    );
    const tls = await this.devTls(flags.tls);
    if (flags.foreground) {
      // Loaded here only: the idempotent path above stays fast without the servers and drivers.
      const { serveEmbedded } = await import('../../localstack/serve.js');
      const { loadEmbeddedNamespaces } = await import('../../localstack/namespaces.js');
      const selection = await loadEmbeddedNamespaces(namespacePaths);
      for (const s of selection.skipped) this.log(`Skipping namespace ${s.namespace}: it ${s.reason}.`);
      let readyState: DevState | undefined;
      await serveEmbedded({
        ports,
        persist: flags.persist === true,
        namespacePaths,
        foreground: true,
        logger: await Promise.all([import('pino'), import('../../logging.js')]).then(
          ([{ destination }, { createLogger }]) => createLogger('prism-dev', { destination: destination(2) }),
        ),
        version: this.config.version,
        tls,
        onReady: (state) => {
          readyState = state;
          this.announce(state, started);
          this.log('Press Ctrl-C to stop.');
        },
      });
      return { stack: 'embedded', state: readyState };
    }

    const state = await this.spawnBackground(
      ports,
      flags.persist === true,
      namespacePaths,
      flags['wait-timeout'] * 1000,
      tls,
    );
    this.announce(state, started);
    return {
      stack: 'embedded',
      pid: state.pid,
      readySeconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      persist: state.persist,
      endpoints: endpoints(state),
      namespaces: state.namespaces,
      skipped: state.skipped,
    };
  }

  private async spawnBackground(
    ports: DevPorts,
    persist: boolean,
    namespacePaths: string[],
    timeoutMs: number,
    tls: DevTlsFiles | undefined,
  ): Promise<DevState> {
    const logFile = embeddedLogFile();
    const fd = openSync(logFile, 'a', 0o600);
    const logStart = statSync(logFile).size;
    writeSync(fd, `${JSON.stringify({ time: Date.now(), msg: 'dev up: starting the embedded stack' })}\n`);
    const args = [
      join(this.config.root, 'dist/localstack/serve-embedded-main.js'),
      JSON.stringify({
        ports,
        persist,
        namespacePaths,
        version: this.config.version,
        ...(tls ? { tls } : {}),
      }),
    ];
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: process.env,
    });
    closeSync(fd);
    let exitCode: number | null | undefined;
    child.once('exit', (code, signal) => (exitCode = code ?? (signal ? -1 : null)));
    child.unref();
    const deadline = Date.now() + timeoutMs;
    const tail = () => tailLog(logFile, 8, logStart);
    while (Date.now() < deadline) {
      if (exitCode !== undefined) {
        // The stack validates its namespace files first; when they are what stopped it, this
        // process validates them again for the full report (not during start-up, where it would
        // take CPU from the stack on a small machine).
        const { loadEmbeddedNamespaces } = await import('../../localstack/namespaces.js');
        await loadEmbeddedNamespaces(namespacePaths);
        throw new PrismError(
          'E_UNAVAILABLE',
          `the embedded stack exited (code ${exitCode}) before it was ready; its last log lines:\n${tail()}`,
          {
            hint: `full log: ${logFile}`,
          },
        );
      }
      const state = readState();
      if (state && state.pid === child.pid && state.phase === 'ready' && (await stackHealth(state)).healthy) {
        for (const skip of state.skipped)
          this.log(`Skipping namespace ${skip.namespace}: it ${skip.reason}.`);
        return state;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGKILL');
    removeState();
    throw new PrismError(
      'E_UNAVAILABLE',
      `the embedded stack was not ready within ${timeoutMs / 1000} s and was stopped; its last log lines:\n${tail()}`,
      {
        hint: `full log: ${logFile}; raise --wait-timeout if the machine is slow`,
      },
    );
  }

  private announce(state: DevState, started: number): void {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    this.log(`Embedded stack ready in ${seconds} s (pid ${state.pid}).`);
    this.log(
      state.persist
        ? `Data persists in ${persistentDataDir()} between runs.`
        : 'Data does NOT persist: it lives in a temporary directory removed by `prismctl dev down` (use --persist to keep it).',
    );
    this.printEndpoints(state);
    this.printTryNext(state);
  }

  private announceDocker(result: DockerUpResult, started: number): void {
    const { state } = result;
    const docker = state.docker!;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const startedNow = result.components.filter((c) => c.action !== 'already running').length;
    this.log(
      startedNow === 0 && result.serversWereRunning
        ? `Docker stack '${docker.name}' is already running and healthy (up ${uptime(state)}); nothing was started (checked in ${seconds} s).`
        : `Docker stack '${docker.name}' ready in ${seconds} s on ${docker.engine} (network ${docker.network}).`,
    );
    for (const c of result.components) {
      const ports = Object.entries(c.ports)
        .map(([name, port]) => `${name} 127.0.0.1:${port}`)
        .join(', ');
      const timing = c.action === 'already running' ? '' : `  ready at ${(c.readyMs / 1000).toFixed(1)} s`;
      this.log(`  ${c.name.padEnd(9)} ${c.action.padEnd(16)} ${ports}${timing}`);
    }
    for (const line of result.bootstrap) this.log(`  bootstrap ${line}`);
    for (const s of result.skipped) this.log(`Skipping namespace ${s.namespace}: it ${s.reason}.`);
    this.printEndpoints(state);
    this.log(
      `Data persists in the Docker volumes prism-${docker.name}-<component>-data and ${state.dataDir}; \`prismctl dev down --volumes\` removes the volumes.`,
    );
    this.printTryNext(state);
  }

  /** The next three things to try (login, kv set, kv get), plus messaging. */
  private printTryNext(state: DevState): void {
    const nonDefault =
      state.ports.proxy !== DEFAULT_DEV_PORTS.proxy || state.ports.admin !== DEFAULT_DEV_PORTS.admin;
    this.log('');
    this.log('Try next:');
    if (nonDefault) this.log('  eval "$(prismctl dev env)"   # the ports are not the defaults');
    if (state.issuer) this.log(`  prismctl login --issuer ${state.issuer}`);
    this.log('  prismctl kv set -n playground greeting hello');
    this.log('  prismctl kv get -n playground greeting');
    this.log(
      '  prismctl publish -n playground playground.events hi && prismctl consume -n playground playground.events --group cli --max 1',
    );
  }

  private printEndpoints(state: DevState): void {
    const e = endpoints(state);
    this.log(`  admin  ${e.admin}  (health ${e.adminHttp}/healthz)`);
    this.log(`  proxy  ${e.proxy}  (ready  ${e.proxyHttp}/readyz)`);
    this.log(`  web    ${e.console}  (console: namespaces, proxies, live traffic)`);
    if (state.issuer) this.log(`  login  ${state.issuer}  (OpenID issuer)`);
    if (state.tls) {
      this.log(`  tls    on; the certificates chain to the local CA ${state.tls.caFile}`);
      this.log(
        `         prismctl trusts it for this stack; other clients: export PRISM_TLS_CA_FILE=${state.tls.caFile}`,
      );
    } else {
      this.log('  tls    off (--no-tls): the admin and proxy serve plaintext');
    }
    this.log(`  namespaces: ${state.namespaces.join(', ') || '(none)'}`);
    this.log(`  logs: ${state.logFile}`);
  }
}

interface EmbeddedUpFlags {
  tls: boolean;
  'admin-port': number;
  'admin-metrics-port': number;
  'proxy-port': number;
  'proxy-metrics-port': number;
  'idp-port': number;
  persist?: boolean;
  namespaces?: string[];
  foreground?: boolean;
  'wait-timeout': number;
}

interface DockerUpFlags extends EmbeddedUpFlags {
  stack?: string;
  network?: string;
  components?: string[];
  image?: string[];
  port?: string[];
  config?: string;
  'keep-on-failure'?: boolean;
}
