/**
 * The Docker stack's containers through dockerode: up (idempotent, parallel in dependency order,
 * gated on real probes, cleaned up on failure), status, logs and down. Everything this module
 * creates carries the stack label, so `down` finds it without any state file.
 */
import type Docker from 'dockerode';
import { PrismError } from '../errors.js';
import { startWaves, type ComponentSpec, type ProbeSpec, type StackConfig } from './catalog.js';
import {
  componentPortSpecs,
  containerName,
  containerSpec,
  demuxLogs,
  LABEL_COMPONENT,
  LABEL_CONFIG,
  LABEL_STACK,
  networkName,
  volumeName,
} from './containers.js';
import { checkPorts, describePortProblem, DEV_HOST } from './ports.js';
import { waitHealthy } from './probes.js';

export interface StackEvents {
  /** A component's progress: "pulling 3/7 layers", "starting", "healthy in 1.2 s". */
  status(component: string, message: string): void;
}

export interface UpOptions {
  waitTimeoutMs: number;
  keepOnFailure: boolean;
  events?: StackEvents;
  /** Files to copy into a container before it starts, by the name the catalog gives them. */
  renderFile?: (name: string, component: ComponentSpec) => string;
}

export type ComponentAction = 'started' | 'already running' | 'recreated';

export interface ComponentResult {
  name: string;
  container: string;
  image: string;
  action: ComponentAction;
  ports: Record<string, number>;
  /** From the start of this run to the component's first healthy probe. */
  readyMs: number;
  detail: string;
  /** How `dev status` probes it again. */
  probe: ProbeSpec;
  /** Whether its data lives in a volume that outlives the container. */
  volume: boolean;
}

const quiet: StackEvents = { status: () => undefined };

function stackFilter(stack: string): string {
  return JSON.stringify({ label: [`${LABEL_STACK}=${stack}`] });
}

export async function stackContainers(docker: Docker, stack: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: stackFilter(stack) });
}

/** How many containers, networks and volumes carry the stack label. */
export async function stackLeftovers(
  docker: Docker,
  stack: string,
): Promise<{ containers: number; networks: number; volumes: number }> {
  const filters = stackFilter(stack);
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
  ]);
  return { containers: containers.length, networks: networks.length, volumes: volumes.Volumes?.length ?? 0 };
}

/** Brings the stack up; returns once every component passed its probe. */
export async function upDockerStack(
  docker: Docker,
  config: StackConfig,
  options: UpOptions,
): Promise<ComponentResult[]> {
  const events = options.events ?? quiet;
  const started = Date.now();
  const deadline = started + options.waitTimeoutMs;
  const existing = new Map(
    (await stackContainers(docker, config.stack)).map((c) => [c.Labels[LABEL_COMPONENT] ?? '', c]),
  );
  const specs = new Map(config.components.map((c) => [c.name, containerSpec(config, c)]));

  // Which components need a (new) container, and which are running as wanted already.
  const reuse = new Set<string>();
  for (const c of config.components) {
    const info = existing.get(c.name);
    if (
      info &&
      info.State === 'running' &&
      info.Labels[LABEL_CONFIG] === specs.get(c.name)!.Labels![LABEL_CONFIG]
    ) {
      reuse.add(c.name);
    }
  }
  const toCreate = config.components.filter((c) => !reuse.has(c.name));

  const problems = await checkPorts(toCreate.flatMap(componentPortSpecs));
  if (problems.length > 0) {
    throw new PrismError('E_UNAVAILABLE', problems.map((p) => describePortProblem(p)).join('; '), {
      hint: 'nothing was started',
    });
  }

  const created = {
    containers: [] as string[],
    volumes: [] as string[],
    network: undefined as string | undefined,
  };
  const results: ComponentResult[] = [];
  try {
    if (config.network === 'bridge' && toCreate.length > 0) {
      created.network = await ensureNetwork(docker, config.stack);
    }
    await Promise.all(toCreate.map((c) => ensureImage(docker, c, events)));
    for (const wave of startWaves(config.components)) {
      const waveResults = await Promise.all(
        wave.map(async (c): Promise<ComponentResult> => {
          const spec = specs.get(c.name)!;
          const old = existing.get(c.name);
          let action: ComponentAction = 'already running';
          if (!reuse.has(c.name)) {
            if (old) await docker.getContainer(old.Id).remove({ force: true });
            if (c.volume && (await ensureVolume(docker, config.stack, c.name))) {
              created.volumes.push(volumeName(config.stack, c.name));
            }
            events.status(c.name, `creating ${spec.name} from ${c.image}`);
            const container = await docker.createContainer(spec);
            created.containers.push(container.id);
            await copyFiles(container, c, options.renderFile);
            await container.start();
            action = old ? 'recreated' : 'started';
          }
          events.status(c.name, `waiting for ${c.probe.type} probe on ${DEV_HOST}:${c.ports[c.probe.port]}`);
          const probe = await waitHealthy(
            {
              spec: c.probe,
              host: DEV_HOST,
              port: c.ports[c.probe.port]!,
              ...(c.env.POSTGRES_USER !== undefined ? { user: c.env.POSTGRES_USER } : {}),
              ...(c.env.POSTGRES_PASSWORD !== undefined ? { password: c.env.POSTGRES_PASSWORD } : {}),
            },
            deadline,
            () => exitedWhy(docker, spec.name!),
          );
          if (!probe.healthy) throw new ComponentFailure(c.name, spec.name!, probe.detail);
          const readyMs = Date.now() - started;
          events.status(
            c.name,
            `${action === 'already running' ? 'already running and healthy' : 'healthy'} (${probe.detail})`,
          );
          return {
            name: c.name,
            container: spec.name!,
            image: c.image,
            action,
            ports: c.ports,
            readyMs,
            detail: probe.detail,
            probe: c.probe,
            volume: c.volume !== undefined,
          };
        }),
      );
      results.push(...waveResults);
    }
    return results;
  } catch (err) {
    const failure = err instanceof ComponentFailure ? err : undefined;
    const logs = failure ? await lastLogLines(docker, failure.container, 20) : '';
    let cleanup = '';
    if (options.keepOnFailure) {
      cleanup = ' Kept what this run started (--keep-on-failure); `prismctl dev down` removes it.';
    } else {
      await removeCreated(docker, created);
      cleanup = ' Removed what this run started.';
    }
    if (failure) {
      throw new PrismError(
        'E_UNAVAILABLE',
        `${failure.component} did not become healthy: ${failure.detail}.${cleanup}${logs ? `\nLast log lines of ${failure.container}:\n${indent(logs)}` : ''}`,
        {
          hint: 'raise --wait-timeout on a slow machine; `prismctl dev up --keep-on-failure` keeps the container to inspect',
        },
      );
    }
    if (err instanceof PrismError) {
      err.message += cleanup;
      throw err;
    }
    throw new PrismError(
      'E_UNAVAILABLE',
      `the Docker stack did not start: ${(err as Error).message}.${cleanup}`,
    );
  }
}

class ComponentFailure extends Error {
  constructor(
    readonly component: string,
    readonly container: string,
    readonly detail: string,
  ) {
    super(`${component}: ${detail}`);
  }
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** Why a container will never become healthy (it exited), or undefined while it runs. */
async function exitedWhy(docker: Docker, name: string): Promise<string | undefined> {
  try {
    const info = await docker.getContainer(name).inspect();
    if (info.State.Running) return undefined;
    return `its container exited with code ${info.State.ExitCode}${info.State.Error ? ` (${info.State.Error})` : ''}`;
  } catch {
    return undefined;
  }
}

async function ensureNetwork(docker: Docker, stack: string): Promise<string | undefined> {
  const name = networkName(stack);
  const found = await docker.listNetworks({ filters: JSON.stringify({ name: [name] }) });
  if (found.some((n) => n.Name === name)) return undefined;
  await docker.createNetwork({ Name: name, Driver: 'bridge', Labels: { [LABEL_STACK]: stack } });
  return name;
}

/** True when this call created the volume. */
async function ensureVolume(docker: Docker, stack: string, component: string): Promise<boolean> {
  const name = volumeName(stack, component);
  try {
    await docker.getVolume(name).inspect();
    return false;
  } catch {
    await docker.createVolume({ Name: name, Labels: { [LABEL_STACK]: stack, [LABEL_COMPONENT]: component } });
    return true;
  }
}

/** Pulls the image when the engine does not have it, reporting layer progress. */
async function ensureImage(docker: Docker, c: ComponentSpec, events: StackEvents): Promise<void> {
  try {
    await docker.getImage(c.image).inspect();
    return;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
  events.status(c.name, `pulling ${c.image}`);
  try {
    const stream = await docker.pull(c.image);
    await new Promise<void>((resolve, reject) => {
      const layers = new Map<string, string>();
      docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? reject(err) : resolve()),
        (event: { id?: string; status?: string; error?: string }) => {
          if (event.error) return;
          if (event.id && event.status) layers.set(event.id, event.status);
          const done = [...layers.values()].filter((s) => /complete|already exists/i.test(s)).length;
          if (layers.size > 0) events.status(c.name, `pulling ${c.image}: ${done}/${layers.size} layers`);
        },
      );
    });
  } catch (err) {
    throw new PrismError('E_UNAVAILABLE', `cannot pull ${c.image} for ${c.name}: ${(err as Error).message}`, {
      hint: `without a reachable registry, point ${c.name} at a local image: --image ${c.name}=<image> or components.${c.name}.image in dev.yaml`,
    });
  }
}

async function copyFiles(
  container: Docker.Container,
  c: ComponentSpec,
  renderFile: UpOptions['renderFile'],
): Promise<void> {
  const entries = Object.entries(c.files);
  if (entries.length === 0) return;
  if (!renderFile) throw new PrismError('E_INTERNAL', `${c.name} needs files and nothing renders them`);
  const { pack } = await import('tar-stream');
  const tar = pack();
  for (const [path, name] of entries) {
    tar.entry({ name: path.replace(/^\/+/, ''), mode: 0o644 }, renderFile(name, c));
  }
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk as Buffer);
  await container.putArchive(Buffer.concat(chunks), { path: '/' });
}

async function removeCreated(
  docker: Docker,
  created: { containers: string[]; volumes: string[]; network: string | undefined },
): Promise<void> {
  await Promise.all(
    created.containers.map((id) =>
      docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  await Promise.all(
    created.volumes.map((v) =>
      docker
        .getVolume(v)
        .remove()
        .catch(() => undefined),
    ),
  );
  if (created.network)
    await docker
      .getNetwork(created.network)
      .remove()
      .catch(() => undefined);
}

/** The last `lines` lines of a container's stdout and stderr. */
export async function lastLogLines(docker: Docker, container: string, lines: number): Promise<string> {
  try {
    const buffer = (await docker.getContainer(container).logs({
      stdout: true,
      stderr: true,
      tail: lines,
      follow: false,
    })) as unknown as Buffer;
    return demuxLogs(buffer);
  } catch {
    return '';
  }
}

export interface DownResult {
  containers: string[];
  networks: string[];
  volumes: string[];
}

/** Removes the stack's containers and network, and its volumes when asked. */
export async function downDockerStack(
  docker: Docker,
  stack: string,
  options: { volumes: boolean; stopTimeoutSeconds?: number },
): Promise<DownResult> {
  const filters = stackFilter(stack);
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    containers.map(async (c) => {
      const container = docker.getContainer(c.Id);
      if (c.State === 'running')
        await container.stop({ t: options.stopTimeoutSeconds ?? 5 }).catch(() => undefined);
      await container.remove({ force: true });
    }),
  );
  const networks = await docker.listNetworks({ filters });
  for (const n of networks) await docker.getNetwork(n.Id).remove();
  const volumes: string[] = [];
  if (options.volumes) {
    const listed = (await docker.listVolumes({ filters })).Volumes ?? [];
    for (const v of listed) {
      await docker.getVolume(v.Name).remove();
      volumes.push(v.Name);
    }
  }
  return {
    containers: containers.map((c) => c.Names[0]?.replace(/^\//, '') ?? c.Id),
    networks: networks.map((n) => n.Name),
    volumes,
  };
}

/** Follows or prints a component's logs onto the given streams. */
export async function streamLogs(
  docker: Docker,
  stack: string,
  component: string,
  options: { follow: boolean; tail?: number; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<void> {
  const container = docker.getContainer(containerName(stack, component));
  if (!options.follow) {
    const text = await lastLogLines(docker, containerName(stack, component), options.tail ?? 200);
    options.stdout.write(text);
    return;
  }
  const stream = await container.logs({
    stdout: true,
    stderr: true,
    follow: true,
    tail: options.tail ?? 200,
  });
  docker.modem.demuxStream(stream, options.stdout, options.stderr);
  await new Promise<void>((resolve) => stream.on('end', () => resolve()));
}
