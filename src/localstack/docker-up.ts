/**
 * `prismctl dev up` on Docker, in order: checks before anything starts (up-preflight.ts), the
 * containers (docker-stack.ts), their bootstrap (up-bootstrap.ts), the admin's backend catalog
 * (backends-file.ts), the bundled admin and proxy under a detached supervisor (up-supervisor.ts),
 * the namespaces applied (up-apply.ts), and the state file written once the proxy is ready and
 * serves them (up-readiness.ts). A failure after the containers are up is undone by
 * up-rollback.ts.
 */
import { PrismError } from '../errors.js';
import type { StackConfig } from './catalog.js';
import { renderDexConfig } from './bootstrap.js';
import { stackDir, writeBackends } from './backends-file.js';
import { connectEngine } from './docker-engine.js';
import { upDockerStack, type ComponentResult, type StackEvents } from './docker-stack.js';
import { probeHttp } from './health.js';
import type { DevTlsFiles } from './dev-tls.js';
import type { NamespaceSelection } from './namespaces.js';
import { catalogEndpoints, stackEndpoints } from './stack-endpoints.js';
import type { DevPorts } from './ports.js';
import { endpoints, readState, writeState, type DevState } from './state.js';
import { applyNamespaces, loadFollowing, namespaceDigest } from './up-apply.js';
import { bootstrapStack } from './up-bootstrap.js';
import { checkBeforeUp, serversRunning as stackServersRunning } from './up-preflight.js';
import { proxyReadiness, waitReady } from './up-readiness.js';
import { undoFailedUp } from './up-rollback.js';
import { startSupervisor } from './up-supervisor.js';

export interface DockerUpOptions {
  packageRoot: string;
  version: string;
  /** The engine that answered (unix:// or tcp://). */
  engine: string;
  config: StackConfig;
  ports: DevPorts;
  waitTimeoutMs: number;
  keepOnFailure: boolean;
  namespacePaths: string[];
  events: StackEvents;
  /** Serve the admin and proxy over TLS with these files (undefined: plaintext, --no-tls). */
  tls?: DevTlsFiles | undefined;
}

export interface DockerUpResult {
  state: DevState;
  components: ComponentResult[];
  /** What bootstrap did, one line each. */
  bootstrap: string[];
  skipped: NamespaceSelection['skipped'];
  /** True when the admin and proxy were already running and nothing of theirs was started. */
  serversWereRunning: boolean;
}

export async function dockerUp(options: DockerUpOptions): Promise<DockerUpResult> {
  const { config, events } = options;
  const started = Date.now();
  const deadline = started + options.waitTimeoutMs;
  const docker = connectEngine(options.engine);

  // Everything that can be checked before a container starts is checked first. Namespace files
  // unchanged since the last ready run are not validated or applied again (nor are the validator
  // and gRPC client loaded), which keeps a second `dev up` quick.
  const existing = readState();
  const serversRunning = stackServersRunning(existing, config.stack);
  const digest = await namespaceDigest(options.namespacePaths);
  const unchanged = serversRunning && existing.phase === 'ready' && existing.namespaceDigest === digest;
  const stack = stackEndpoints(config);
  const { loaded, followed } = unchanged
    ? { loaded: [], followed: [] }
    : await loadFollowing(options.namespacePaths, catalogEndpoints(config), stack);
  await checkBeforeUp(existing, serversRunning, options.ports);
  const ports = serversRunning ? existing.ports : options.ports;

  const components = await upDockerStack(docker, config, {
    waitTimeoutMs: Math.max(1, deadline - Date.now()),
    keepOnFailure: options.keepOnFailure,
    events,
    renderFile: (name, c) => {
      if (name === 'dex-config') return renderDexConfig(options.packageRoot, config, c);
      throw new PrismError(
        'E_USAGE',
        `component ${c.name} asks for file '${name}', which prismctl cannot render`,
      );
    },
  });
  const startedNow = components.filter((c) => c.action !== 'already running').map((c) => c.container);

  try {
    // Bootstrap writes only into containers; when every one was already running with the same
    // configuration after a ready run with the same namespaces, it has nothing new to write.
    const bootstrap =
      unchanged && startedNow.length === 0
        ? ['already done by the run that started these containers']
        : await bootstrapStack(config, loaded, events);
    const dir = stackDir(config.stack);
    const backendsFile = writeBackends(dir, config);
    const issuer = stack.issuer;
    const { selectRunnable } = await import('./namespaces.js');
    const selection = selectRunnable(loaded, {
      backends: new Set([...config.components.map((c) => c.name), 'memstore', 'sqlite']),
      where: 'this stack does not run (add it with --components or `only:` in dev.yaml)',
      ...(issuer !== undefined ? { issuer } : {}),
      ...(stack.vault !== undefined ? { vault: stack.vault } : {}),
    });
    const served = new Set(selection.runnable.map((r) => r.request.namespace));
    const moved = followed.filter((name) => served.has(name));
    if (moved.length > 0) {
      events.status(
        'admin',
        `${moved.join(', ')}: written for the catalog's Dex and Vault, applied with this stack's (${[stack.issuer, stack.vault].filter(Boolean).join(', ')})`,
      );
    }

    let state: DevState;
    if (serversRunning) {
      state = { ...existing, docker: { ...existing.docker!, components } };
    } else {
      state = startSupervisor({
        packageRoot: options.packageRoot,
        engine: options.engine,
        config,
        ports,
        dir,
        backendsFile,
        components,
        issuer,
        tls: options.tls,
      });
      writeState(state);
    }
    events.status('admin', `waiting for ${endpoints(state).adminHttp}/healthz`);
    const ca = state.tls?.caFile;
    await waitReady(
      () => probeHttp(`${endpoints(state).adminHttp}/healthz`, 1000, 200, ca),
      deadline,
      'the admin',
      state,
    );
    const applied = unchanged
      ? existing.namespaces
      : await applyNamespaces(endpoints(state).admin, selection, events, ca);
    const skipped = unchanged ? existing.skipped : selection.skipped;
    events.status('admin', `healthy; applied ${applied.length} namespace${applied.length === 1 ? '' : 's'}`);
    events.status('proxy', `waiting until it serves ${applied.join(', ') || 'its namespaces'}`);
    await waitReady(
      () => proxyReadiness(endpoints(state).proxyHttp, applied, ca),
      deadline,
      'the proxy',
      state,
    );
    events.status('proxy', `healthy; serving ${applied.join(', ') || 'nothing'}`);
    const ready: DevState = {
      ...state,
      phase: 'ready',
      namespaces: [...applied].sort(),
      skipped,
      namespaceDigest: digest,
    };
    writeState(ready);
    return {
      state: ready,
      components,
      bootstrap,
      skipped,
      serversWereRunning: serversRunning,
    };
  } catch (err) {
    await undoFailedUp({
      docker,
      config,
      serversWereRunning: serversRunning,
      keepOnFailure: options.keepOnFailure,
      components,
      startedNow,
    });
    throw err;
  }
}
