import { Flags } from '@oclif/core';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { destination, pino } from 'pino';
import { BaseCommand } from '../../cli/base-command.js';
import { PrismError } from '../../errors.js';
import { defaultNamespacePaths } from '../../localstack/defaults.js';
import { dockerTarget, pingDocker } from '../../localstack/docker.js';
import { portsFrom, stackFlags } from '../../localstack/flags.js';
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
  uptime,
  type DevState,
} from '../../localstack/state.js';

export default class DevUp extends BaseCommand {
  static override summary =
    'Start the local Prism stack (embedded: admin, proxy, memstore and sqlite in one process)';
  static override description = `Starts the embedded stack in the background and returns once the admin answers /healthz and the proxy answers /readyz; a second run reports the running stack and starts nothing.
The Docker stack (Vault, Dex, Redis, NATS, Kafka, PostgreSQL) is not built yet: with or without a Docker engine, dev up runs the embedded stack, and --docker fails.
Only namespaces whose backends are all memstore or sqlite are applied; others are skipped with the reason.
State is kept in <prism home>/dev/state.json and logs in <prism home>/dev/logs/.`;
  static override examples = [
    '<%= config.bin %> dev up',
    '<%= config.bin %> dev up --persist',
    '<%= config.bin %> dev up --foreground --proxy-port 50190',
  ];
  static override flags = {
    ...stackFlags,
    embedded: Flags.boolean({
      description: 'Run the embedded stack without asking for a Docker engine',
      exclusive: ['docker'],
    }),
    docker: Flags.boolean({ description: 'Require the Docker stack; never fall back to the embedded one' }),
    foreground: Flags.boolean({
      description: 'Stay attached, log to stderr, and stop everything on Ctrl-C or SIGTERM',
    }),
    'wait-timeout': Flags.integer({
      description: 'Seconds to wait for the stack to be ready',
      default: 30,
      min: 1,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DevUp);
    const started = performance.now();

    const existing = readState();
    if (existing && stackAlive(existing.pid)) {
      const health = await stackHealth(existing);
      if (health.healthy && existing.phase === 'ready') {
        this.log(
          `The embedded stack is already running and healthy (pid ${existing.pid}, up ${uptime(existing)}); nothing was started.`,
        );
        this.printEndpoints(existing);
        return;
      }
      throw new PrismError(
        'E_UNAVAILABLE',
        `the embedded stack (pid ${existing.pid}) is running but not healthy: admin ${health.admin.healthy ? 'ok' : health.admin.detail}, proxy ${health.proxy.healthy ? 'ready' : health.proxy.detail}`,
        { hint: 'see `prismctl dev logs`, then `prismctl dev down` and `prismctl dev up`' },
      );
    }
    if (existing) removeState();

    if (!flags.embedded) {
      const probe = await pingDocker(dockerTarget());
      if (flags.docker) {
        throw new PrismError(
          'E_UNAVAILABLE',
          probe.ok
            ? `a Docker engine answered at ${probe.target}, but the Docker stack is not built yet`
            : `no Docker engine answered at ${probe.target} (${probe.reason}) and --docker does not fall back`,
          { hint: 'run `prismctl dev up --embedded` for the in-process stack' },
        );
      }
      this.log(
        probe.ok
          ? `A Docker engine answered at ${probe.target}, but the Docker stack is not built yet, so this is the embedded stack.`
          : `No Docker engine answered at ${probe.target} (${probe.reason}), so this is the embedded stack: admin, proxy, memstore and sqlite in one process.`,
      );
    }

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
    if (flags.foreground) {
      // Loaded here only: the idempotent path above stays fast without the servers and drivers.
      const { serveEmbedded } = await import('../../localstack/serve.js');
      const { loadEmbeddedNamespaces } = await import('../../localstack/namespaces.js');
      const selection = await loadEmbeddedNamespaces(namespacePaths);
      for (const s of selection.skipped) this.log(`Skipping namespace ${s.namespace}: it ${s.reason}.`);
      await serveEmbedded({
        ports,
        persist: flags.persist === true,
        namespacePaths,
        foreground: true,
        logger: pino({ name: 'prism-dev' }, destination(2)),
        version: this.config.version,
        onReady: (state) => {
          this.announce(state, started);
          this.log('Press Ctrl-C to stop.');
        },
      });
      return;
    }

    const state = await this.spawnBackground(
      ports,
      flags.persist === true,
      namespacePaths,
      flags['wait-timeout'] * 1000,
    );
    this.announce(state, started);
  }

  private async spawnBackground(
    ports: DevPorts,
    persist: boolean,
    namespacePaths: string[],
    timeoutMs: number,
  ): Promise<DevState> {
    const logFile = embeddedLogFile();
    const fd = openSync(logFile, 'a', 0o600);
    const logStart = statSync(logFile).size;
    writeSync(fd, `${JSON.stringify({ time: Date.now(), msg: 'dev up: starting the embedded stack' })}\n`);
    const args = [
      join(this.config.root, 'dist/localstack/serve-embedded-main.js'),
      JSON.stringify({ ports, persist, namespacePaths, version: this.config.version }),
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
    // Validate in this process while the stack starts: an invalid file stops it with the full report.
    try {
      const { loadEmbeddedNamespaces } = await import('../../localstack/namespaces.js');
      const selection = await loadEmbeddedNamespaces(namespacePaths);
      for (const s of selection.skipped) this.log(`Skipping namespace ${s.namespace}: it ${s.reason}.`);
    } catch (err) {
      child.kill('SIGKILL');
      if (readState()?.pid === child.pid) removeState();
      throw err;
    }
    const deadline = Date.now() + timeoutMs;
    const tail = () =>
      readFileSync(logFile, 'utf8')
        .slice(logStart)
        .trim()
        .split('\n')
        .slice(-8)
        .map((l) => `  ${l}`)
        .join('\n');
    while (Date.now() < deadline) {
      if (exitCode !== undefined) {
        throw new PrismError(
          'E_UNAVAILABLE',
          `the embedded stack exited (code ${exitCode}) before it was ready; its last log lines:\n${tail()}`,
          {
            hint: `full log: ${logFile}`,
          },
        );
      }
      const state = readState();
      if (state && state.pid === child.pid && state.phase === 'ready' && (await stackHealth(state)).healthy)
        return state;
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
    const nonDefault =
      state.ports.proxy !== DEFAULT_DEV_PORTS.proxy || state.ports.admin !== DEFAULT_DEV_PORTS.admin;
    this.log('');
    this.log('Try next:');
    if (nonDefault) this.log('  eval "$(prismctl dev env)"   # the ports are not the defaults');
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
    this.log(`  namespaces: ${state.namespaces.join(', ') || '(none)'}`);
    this.log(`  logs: ${state.logFile}`);
  }
}
