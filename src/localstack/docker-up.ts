/**
 * `prismctl dev up` on Docker: containers (docker-stack.ts), bootstrap (bootstrap.ts), then the
 * bundled admin and proxy under a detached supervisor, the namespaces applied, and the state file
 * written once the proxy serves them. A failure after the containers are up stops the supervisor
 * and removes the containers this run started (unless --keep-on-failure).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { stringify } from 'yaml';
import { createHash } from 'node:crypto';
import { readSources } from '../config/sources.js';
import { BACKENDS } from '../config/registry.js';
import { PrismError } from '../errors.js';
import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import type { ComponentSpec, StackConfig } from './catalog.js';
import { containerName, renderContext } from './containers.js';
import {
  bootstrapVault,
  dexIssuer,
  ensurePostgresDatabase,
  ensureSessionOwner,
  renderDexConfig,
  SESSION_OWNER_ROLE,
  vaultNamespaces,
  type StackPostgres,
} from './bootstrap.js';
import { dockerodeOptions } from './docker.js';
import { downDockerStack, upDockerStack, type ComponentResult, type StackEvents } from './docker-stack.js';
import { probeHttp, type Probe } from './health.js';
import { waitUntil } from './probes.js';
import type { NamespaceSelection } from './namespaces.js';
import { catalogEndpoints, stackEndpoints, type StackEndpoints } from './stack-endpoints.js';
import { checkPorts, describePortProblem, DEV_HOST, portSpecs, type DevPorts } from './ports.js';
import {
  devDir,
  endpoints,
  logFile,
  readState,
  removeState,
  stackAlive,
  tailLog,
  writeState,
  type DevState,
} from './state.js';

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

export function stackDir(stack: string): string {
  const dir = join(devDir(), `docker-${stack}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export function connectEngine(target: string): Docker {
  const options = dockerodeOptions(target);
  if (!options)
    throw new PrismError(
      'E_USAGE',
      `cannot talk to the engine at ${target}: only unix:// and tcp:// are supported`,
    );
  return new Docker(options);
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
  const serversRunning =
    existing?.stack === 'docker' && existing.docker?.name === config.stack && stackAlive(existing.pid);
  const digest = await namespaceDigest(options.namespacePaths);
  const unchanged = serversRunning && existing.phase === 'ready' && existing.namespaceDigest === digest;
  const stack = stackEndpoints(config);
  const { loaded, followed } = unchanged
    ? { loaded: [], followed: [] }
    : await loadFollowing(options.namespacePaths, catalogEndpoints(config), stack);
  if (existing && !serversRunning && stackAlive(existing.pid)) {
    throw new PrismError(
      'E_UNAVAILABLE',
      `another local stack (${existing.stack}, pid ${existing.pid}) is running`,
      {
        hint: 'stop it with `prismctl dev down` first',
      },
    );
  }
  if (!serversRunning) {
    const problems = await checkPorts(portSpecs(options.ports, { idp: false }));
    if (problems.length > 0) {
      throw new PrismError('E_UNAVAILABLE', problems.map((p) => describePortProblem(p)).join('; '), {
        hint: 'nothing was started',
      });
    }
  }
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
      state = startSupervisor(options, ports, dir, backendsFile, components, issuer);
      writeState(state);
    }
    events.status('admin', `waiting for ${endpoints(state).adminHttp}/healthz`);
    await waitFor(() => probeHttp(`${endpoints(state).adminHttp}/healthz`), deadline, 'the admin', state);
    const applied = unchanged ? existing.namespaces : await applyNamespaces(state, selection, events);
    const skipped = unchanged ? existing.skipped : selection.skipped;
    events.status('admin', `healthy; applied ${applied.length} namespace${applied.length === 1 ? '' : 's'}`);
    events.status('proxy', `waiting until it serves ${applied.join(', ') || 'its namespaces'}`);
    await waitFor(() => proxyServes(state, applied), deadline, 'the proxy', state);
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
    if (!serversRunning) {
      const state = readState();
      if (state?.stack === 'docker' && state.docker?.name === config.stack) {
        await stopSupervisor(state.pid, 10_000);
        removeState();
      }
    }
    if (!options.keepOnFailure && startedNow.length > 0) {
      await Promise.all(
        startedNow.map((name) =>
          docker
            .getContainer(name)
            .remove({ force: true })
            .catch(() => undefined),
        ),
      );
      if (components.every((c) => c.action !== 'already running')) {
        await downDockerStack(docker, config.stack, { volumes: false }).catch(() => undefined);
      }
    }
    throw err;
  }
}

/** The namespace files, validated, with those written for the catalog's stack following this one. */
async function loadFollowing(
  paths: string[],
  catalog: StackEndpoints,
  stack: StackEndpoints,
): Promise<{ loaded: Array<{ request: NamespaceRequest; file: string }>; followed: string[] }> {
  const { loadNamespaceFiles, followStack } = await import('./namespaces.js');
  return followStack(await loadNamespaceFiles(paths), catalog, stack);
}

async function bootstrapStack(
  config: StackConfig,
  loaded: ReadonlyArray<{ request: NamespaceRequest }>,
  events: StackEvents,
): Promise<string[]> {
  const done: string[] = [];
  const byName = new Map(config.components.map((c) => [c.name, c]));
  const pg = byName.get('postgres');
  if (pg) {
    const created = await ensurePostgresDatabase(stackPostgres(pg));
    // The role every table of Prism's drivers belongs to (see startSupervisor), Vault or not.
    await ensureSessionOwner(stackPostgres(pg));
    done.push(created ? 'postgres: created database prism' : 'postgres: database prism exists');
  }
  const vault = byName.get('vault');
  const jwt = vault ? await vaultJwtBinding(config, vault) : undefined;
  if (vault && !jwt) {
    done.push(
      'vault: not bootstrapped (its JWT auth needs an issuer: run Dex, or name yours with issuer: in dev.yaml)',
    );
  }
  if (vault && jwt) {
    events.status('vault', `bootstrapping: JWT auth bound to ${jwt.label}, database secrets engine, policy`);
    const fromVault = renderContext(config, vault).host;
    // Exactly the roles the admin will derive for these namespaces, on the backends it is given.
    const namespaces = vaultNamespaces(
      loaded.map((l) => l.request),
      [...config.components.map((c) => c.name), 'memstore', 'sqlite'],
    );
    const redis = byName.get('redis');
    const steps = await bootstrapVault({
      address: `http://${DEV_HOST}:${vault.ports.api}`,
      rootToken: vault.env.VAULT_DEV_ROOT_TOKEN_ID ?? 'root',
      issuer: jwt.issuer,
      jwksUrl: jwt.jwksUrl,
      audience: 'prismctl',
      ...(pg
        ? {
            postgres: {
              host: fromVault.postgres!,
              port: renderContext(config, pg).port.postgres!,
              database: 'prism',
              user: pg.env.POSTGRES_USER ?? 'postgres',
              password: pg.env.POSTGRES_PASSWORD ?? '',
            },
          }
        : {}),
      ...(redis ? { redis: { host: fromVault.redis!, port: renderContext(config, redis).port.redis! } } : {}),
      namespaces,
    });
    const roles = namespaces.flatMap((n) => n.databaseRoles.map((r) => r.name));
    done.push(
      `vault: ${steps.length} steps (jwt auth, login roles ${namespaces.map((n) => n.loginRole).join(', ') || 'none'}, ` +
        `database roles ${roles.join(', ') || 'none'})`,
    );
  }
  return done;
}

/**
 * What Vault's JWT auth trusts: Dex (its keys as the Vault container reaches them), or dev.yaml's
 * `issuer:`, whose keys its discovery document names. Undefined when the stack has neither.
 */
async function vaultJwtBinding(
  config: StackConfig,
  vault: ComponentSpec,
): Promise<{ issuer: string; jwksUrl: string; label: string } | undefined> {
  if (config.issuer !== undefined) {
    return { issuer: config.issuer, jwksUrl: await discoverJwksUrl(config.issuer), label: config.issuer };
  }
  const dex = config.components.find((c) => c.name === 'dex');
  if (!dex) return undefined;
  const fromVault = renderContext(config, vault).host;
  return {
    issuer: dexIssuer(dex),
    jwksUrl: `http://${fromVault.dex}:${renderContext(config, dex).port.http}/dex/keys`,
    label: 'Dex',
  };
}

async function discoverJwksUrl(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let jwksUri: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`it answered ${res.status}`);
    jwksUri = ((await res.json()) as { jwks_uri?: unknown }).jwks_uri;
  } catch (err) {
    throw new PrismError(
      'E_UNAVAILABLE',
      `cannot read ${url}, the discovery document of issuer: ${issuer}: ${(err as Error).message}`,
      { hint: 'start the identity provider before `prismctl dev up`, or correct issuer: in dev.yaml' },
    );
  }
  if (typeof jwksUri !== 'string' || jwksUri === '') {
    throw new PrismError('E_UNAVAILABLE', `${url} names no jwks_uri`);
  }
  return jwksUri;
}

/** The stack's PostgreSQL as its development superuser, on the `prism` database. */
function stackPostgres(pg: ComponentSpec): StackPostgres {
  return {
    port: pg.ports.postgres!,
    user: pg.env.POSTGRES_USER ?? 'postgres',
    ...(pg.env.POSTGRES_PASSWORD !== undefined ? { password: pg.env.POSTGRES_PASSWORD } : {}),
    database: 'prism',
  };
}

/** The admin's backend catalog: one instance per running backend, plus the in-process ones. */
function writeBackends(dir: string, config: StackConfig): string {
  const backends: Record<string, Array<{ name: string; endpoint: string }>> = {
    memstore: [{ name: 'local-memstore', endpoint: 'memory://' }],
    sqlite: [{ name: 'local-sqlite', endpoint: `file:${join(dir, 'sqlite')}` }],
  };
  const endpoint: Record<string, (p: Record<string, number>) => string> = {
    redis: (p) => `redis://${DEV_HOST}:${p.redis}`,
    nats: (p) => `nats://${DEV_HOST}:${p.client}`,
    postgres: (p) => `postgres://${DEV_HOST}:${p.postgres}/prism`,
    kafka: (p) => `kafka://${DEV_HOST}:${p.broker}`,
  };
  for (const c of config.components) {
    const make = endpoint[c.name];
    if (make && BACKENDS[c.name])
      backends[c.name] = [{ name: containerName(config.stack, c.name), endpoint: make(c.ports) }];
  }
  const file = join(dir, 'backends.yaml');
  writeFileSync(file, `# Written by prismctl dev up for stack ${config.stack}.\n${stringify({ backends })}`, {
    mode: 0o600,
  });
  return file;
}

function startSupervisor(
  options: DockerUpOptions,
  ports: DevPorts,
  dir: string,
  backendsFile: string,
  components: ComponentResult[],
  issuer: string | undefined,
): DevState {
  const { config } = options;
  const run = join(options.packageRoot, 'bin/run.js');
  const e = endpoints({ host: DEV_HOST, ports });
  const pg = config.components.find((c) => c.name === 'postgres');
  // Drivers reach PostgreSQL as the stack's dev superuser; endpoints never carry credentials.
  // Their sessions act as SESSION_OWNER_ROLE (PGOPTIONS, which pg reads like libpq), as the roles
  // Vault leases do: the tables a namespace without Vault creates are then ones a Vault-enabled
  // namespace's leased roles may use and index, and the other way round.
  const pgEnv: Record<string, string> = pg
    ? {
        PGUSER: pg.env.POSTGRES_USER ?? 'postgres',
        ...(pg.env.POSTGRES_PASSWORD ? { PGPASSWORD: pg.env.POSTGRES_PASSWORD } : {}),
        PGOPTIONS: `-c role=${SESSION_OWNER_ROLE}`,
      }
    : {};
  const logFiles = { admin: logFile('admin'), proxy: logFile('proxy') };
  const pidsFile = join(dir, 'pids.json');
  const children = [
    {
      name: 'admin',
      args: [
        run,
        'admin',
        'serve',
        '--listen',
        e.admin,
        '--metrics-listen',
        `${DEV_HOST}:${ports.adminMetrics}`,
        '--store',
        join(dir, 'admin.db'),
        '--backends',
        backendsFile,
        '--heartbeat-interval',
        '1000',
      ],
      logFile: logFiles.admin,
    },
    {
      name: 'proxy',
      args: [
        run,
        'proxy',
        'serve',
        '--admin',
        e.admin,
        '--listen',
        e.proxy,
        '--metrics-listen',
        `${DEV_HOST}:${ports.proxyMetrics}`,
        '--proxy-id',
        `dev-${config.stack}`,
      ],
      env: pgEnv,
      logFile: logFiles.proxy,
      // The proxy registers with the admin at start; it waits rather than failing once.
      after: `http://${DEV_HOST}:${ports.adminMetrics}/healthz`,
    },
  ];
  const supervisorLog = logFile('supervisor');
  const fd = openSync(supervisorLog, 'a', 0o600);
  const child = spawn(
    process.execPath,
    [join(options.packageRoot, 'dist/localstack/supervise-main.js'), JSON.stringify({ children, pidsFile })],
    { detached: true, stdio: ['ignore', fd, fd], env: process.env },
  );
  closeSync(fd);
  child.unref();
  return {
    stack: 'docker',
    pid: child.pid!,
    phase: 'starting',
    host: DEV_HOST,
    ports,
    startedAt: new Date().toISOString(),
    persist: true,
    dataDir: dir,
    logFile: supervisorLog,
    foreground: false,
    namespaces: [],
    skipped: [],
    ...(issuer !== undefined ? { issuer } : {}),
    docker: {
      name: config.stack,
      engine: options.engine,
      network: config.network,
      components,
      pidsFile,
      logFiles,
    },
  };
}

/** A hash of the namespace files' names and contents. */
async function namespaceDigest(paths: readonly string[]): Promise<string> {
  const { sources } = await readSources(paths, async () => Buffer.alloc(0));
  const hash = createHash('sha256');
  for (const { file, text } of sources) hash.update(file).update('\0').update(text).update('\0');
  return hash.digest('hex');
}

async function applyNamespaces(
  state: DevState,
  selection: NamespaceSelection,
  events: StackEvents,
): Promise<string[]> {
  const { AdminClient } = await import('../client/admin-client.js');
  const client = new AdminClient(endpoints(state).admin, { timeoutMs: 5000 });
  try {
    const applied: string[] = [];
    for (const { request, file } of selection.runnable) {
      events.status('admin', `applying ${request.namespace}`);
      await client.apply({ namespace: request, dryRun: false, source: file });
      applied.push(request.namespace);
    }
    return applied;
  } finally {
    client.close();
  }
}

/** Healthy when the proxy's metrics list every namespace as served. */
async function proxyServes(
  state: DevState,
  names: readonly string[],
): Promise<{ healthy: boolean; detail: string }> {
  const metrics = await probeHttp(`${endpoints(state).proxyHttp}/metrics`, 1000, 1 << 20);
  if (!metrics.healthy) return { healthy: false, detail: metrics.detail.slice(0, 200) };
  const missing = names.filter(
    (n) => !metrics.detail.includes(`prism_proxy_namespace_served{namespace="${n}"} 1`),
  );
  return missing.length === 0
    ? { healthy: true, detail: 'serving' }
    : { healthy: false, detail: `not serving ${missing.join(', ')} yet` };
}

async function waitFor(
  probe: () => Promise<Probe>,
  deadline: number,
  what: string,
  state: DevState,
): Promise<void> {
  const last = await waitUntil(
    probe,
    deadline,
    async () => (stackAlive(state.pid) ? undefined : 'its supervisor exited'),
    100,
  );
  if (last.healthy) return;
  const docker = state.docker!;
  const logs = tailLog(what.includes('admin') ? docker.logFiles.admin : docker.logFiles.proxy, 10);
  throw new PrismError(
    'E_UNAVAILABLE',
    `${what} was not ready: ${last.detail}${logs ? `\nIts last log lines:\n${logs}` : ''}`,
    { hint: `logs: ${docker.logFiles.admin}, ${docker.logFiles.proxy}` },
  );
}

/** SIGTERM to the supervisor (it stops admin and proxy), SIGKILL to its group after the timeout. */
export async function stopSupervisor(pid: number, timeoutMs: number): Promise<boolean> {
  if (!stackAlive(pid)) return true;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return true;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!stackAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
  return false;
}
