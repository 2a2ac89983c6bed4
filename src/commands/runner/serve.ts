import { Args, Flags } from '@oclif/core';
import { createLogger } from '../../logging.js';
import { logLevelFlag } from '../../cli/log-flags.js';
import { BaseCommand } from '../../cli/base-command.js';
import { checkPlaintextListen, serverTlsFlags, serverTlsFromFlags } from '../../cli/tls-flags.js';
import { loadServedNamespaces } from '../../admin/local-namespaces.js';
import { RunnerServer } from '../../runners/runner-server.js';
import { createRunner } from '../../runners/create-runner.js';
import { vaultCredentials, vaultFlags, vaultSettingsFromFlags } from '../../auth/vault-credentials.js';
import { UsageError } from '../../errors.js';
import { prismHome } from '../../config/home.js';
import { join } from 'node:path';
import { isUnixAddress } from '../../transport/unix-socket.js';
import { patternModuleFlag } from '../../cli/pattern-module-flag.js';
import { createExternalRunner } from '../../runners/external.js';
import { externalPattern, loadPatternModules } from '../../config/external-patterns.js';
import { readAssignment, reportServing, exitWhenParentGoes, type Assigned } from '../../runners/launched.js';

const SERVABLE = ['keyvalue', 'producer', 'consumer', 'mailbox'];

export default class RunnerServe extends BaseCommand {
  static override summary = 'Run one pattern runner as its own process';
  static override description = `Serves the pattern's prism.data.v1 API (KeyValue, Producer, Consumer or Mailbox) over gRPC, so a proxy can route to an isolated runner. The config is a namespace file; --pattern picks the pattern when it has several of the type.
A namespace with auth enabled is refused unless --no-auth says that this process, which cannot verify tokens itself, only runs behind a proxy that does.`;
  static override examples = [
    '<%= config.bin %> runner serve keyvalue --config examples/runners/keyvalue-redis.yaml --listen 127.0.0.1:50100',
  ];
  static override args = {
    // ignoreStdin: a launched runner's standard input carries its assignment, not this argument.
    type: Args.string({
      description: 'Pattern type to serve (with --config)',
      options: SERVABLE,
      ignoreStdin: true,
    }),
  };
  static override flags = {
    config: Flags.string({
      char: 'c',
      description: 'Namespace file holding the pattern',
      exactlyOne: ['config', 'assignment-stdin'],
    }),
    'assignment-stdin': Flags.boolean({
      description:
        'Read a prism.config.v1.RunnerAssignment (protobuf JSON, one line) from standard input, serve the patterns it names, and exit when standard input closes (how a proxy launches runners; docs/architecture.md)',
    }),
    'status-fd': Flags.integer({
      description:
        'File descriptor to write one JSON line to once serving: {"serving":true,"pid":…,"heapLimitBytes":…}',
      dependsOn: ['assignment-stdin'],
    }),
    pattern: Flags.string({ char: 'p', description: 'Pattern name (default: the only pattern of the type)' }),
    listen: Flags.string({
      description: 'gRPC listen address: host:port, or unix:/path (the caller header is trusted only there)',
      default: '127.0.0.1:50100',
    }),
    ...serverTlsFlags,
    backends: Flags.string({ description: 'Backends catalog file (default: local endpoints)' }),
    'data-dir': Flags.string({
      description: 'Directory of file-backed stores (sqlite) (default: <prism home>/data)',
    }),
    'no-auth': Flags.boolean({
      description: 'Serve an auth-enabled namespace without verifying tokens (behind a verifying proxy only)',
    }),
    ...patternModuleFlag,
    'log-level': logLevelFlag,
    ...vaultFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RunnerServe);
    const logger = createLogger('prism-runner', { level: flags['log-level'] });
    if (!isUnixAddress(flags.listen)) checkPlaintextListen(flags, [['--listen', flags.listen]], logger);
    await loadPatternModules(flags['pattern-module']);
    const { served, patterns } = flags['assignment-stdin']
      ? await readAssignment(process.stdin)
      : await this.fromConfig(flags.config!, args.type, flags.pattern, flags.backends);
    if (served.namespace.auth?.enabled) {
      if (!flags['no-auth']) {
        throw new UsageError(
          `namespace '${served.namespace.namespace}' has auth enabled and a standalone runner does not verify tokens`,
          'run it behind a proxy and pass --no-auth',
        );
      }
      logger.warn(
        { namespace: served.namespace.namespace },
        'auth is OFF for this runner (--no-auth): only a verifying proxy may reach it',
      );
    }
    // Vault (#7): one service-identity session for the runner's lifetime; revoked on stop, and
    // on a failed start (the leases it took are given back before the error is shown).
    const vault = vaultCredentials(vaultSettingsFromFlags(flags), { logger });
    const revoke = () =>
      vault
        .close()
        .catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'vault revoke failed'));
    let server: RunnerServer;
    try {
      const runners = patterns.map((name) => {
        const pattern = served.assignment.patterns.find((p) => p.name === name);
        if (!pattern)
          throw new UsageError(`namespace '${served.namespace.namespace}' has no assigned pattern '${name}'`);
        if (externalPattern(pattern.type))
          return createExternalRunner(served.namespace, name, pattern, {
            dataDir: flags['data-dir'] ?? join(prismHome(), 'data'),
            credentials: vault.resolve,
          });
        return createRunner(served.namespace, name, pattern, {
          dataDir: flags['data-dir'] ?? join(prismHome(), 'data'),
          credentials: vault.resolve,
          vault: { session: (scope) => vault.session(scope), defaults: vaultSettingsFromFlags(flags) },
        });
      });
      server = new RunnerServer(runners, { listen: flags.listen, logger, tls: serverTlsFromFlags(flags) });
      await server.start();
    } catch (err) {
      await revoke();
      throw err;
    }
    if (flags['status-fd'] !== undefined) reportServing(flags['status-fd']);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
      if (flags['assignment-stdin']) exitWhenParentGoes(process.stdin, resolve);
    });
    await server.stop();
    await revoke();
    // The lifeline pipe would keep the event loop (and so this process) alive.
    if (flags['assignment-stdin']) process.stdin.destroy();
    logger.info('stopped');
  }

  private async fromConfig(
    file: string,
    type: string | undefined,
    patternName: string | undefined,
    backends: string | undefined,
  ): Promise<Assigned> {
    if (!type)
      throw new UsageError('name the pattern type to serve', 'e.g. runner serve keyvalue --config ns.yaml');
    const [served] = await loadServedNamespaces([file], { backends });
    if (!served) throw new UsageError(`${file} holds no namespace`);
    const candidates = served.assignment.patterns.filter(
      (p) => p.type === type && (!patternName || p.name === patternName),
    );
    if (candidates.length !== 1) {
      const names = served.assignment.patterns.filter((p) => p.type === type).map((p) => p.name);
      throw new UsageError(
        candidates.length === 0
          ? `namespace '${served.namespace.namespace}' has no ${type} pattern${patternName ? ` named '${patternName}'` : ''}`
          : `namespace '${served.namespace.namespace}' has several ${type} patterns`,
        names.length ? `pass --pattern with one of: ${names.join(', ')}` : undefined,
      );
    }
    return { served, patterns: [candidates[0]!.name] };
  }
}
