/**
 * `dev status` for the Docker stack: each container as the engine reports it, probed again with
 * its catalog probe, plus the supervised admin and proxy.
 */
import { readFileSync } from 'node:fs';
import { tlsStatus, type ComponentStatus, type DevStatus } from './status.js';
import { connectEngine } from './docker-engine.js';
import { stackContainers } from './docker-stack.js';
import { LABEL_COMPONENT } from './containers.js';
import { stackHealth } from './health.js';
import { probeOnce } from './probes.js';
import { DEV_HOST } from './ports.js';
import { endpoints, uptimeSeconds, type DevState } from './state.js';

export async function dockerStatus(state: DevState): Promise<DevStatus> {
  const docker = state.docker!;
  const engine = connectEngine(docker.engine);
  const containers = new Map(
    (await stackContainers(engine, docker.name)).map((c) => [c.Labels[LABEL_COMPONENT] ?? '', c]),
  );
  const components: ComponentStatus[] = await Promise.all(
    docker.components.map(async (c): Promise<ComponentStatus> => {
      const info = containers.get(c.name);
      if (!info) {
        return {
          name: c.name,
          kind: 'container',
          state: 'missing',
          health: 'unknown',
          detail: `no container ${c.container}`,
          endpoint: '',
          ports: c.ports,
          uptimeSeconds: 0,
          persists: c.volume,
        };
      }
      const inspected = await engine.getContainer(info.Id).inspect();
      const env = Object.fromEntries(
        (inspected.Config.Env ?? []).map((kv) => [
          kv.slice(0, kv.indexOf('=')),
          kv.slice(kv.indexOf('=') + 1),
        ]),
      );
      const running = inspected.State.Running;
      const probe = running
        ? await probeOnce({
            spec: c.probe,
            host: DEV_HOST,
            port: c.ports[c.probe.port]!,
            ...(env.POSTGRES_USER !== undefined ? { user: env.POSTGRES_USER } : {}),
            ...(env.POSTGRES_PASSWORD !== undefined ? { password: env.POSTGRES_PASSWORD } : {}),
          })
        : { healthy: false, detail: `exited with code ${inspected.State.ExitCode}` };
      return {
        name: c.name,
        kind: 'container',
        state: inspected.State.Status,
        health: probe.healthy ? 'healthy' : 'unhealthy',
        detail: probe.detail,
        endpoint: `${DEV_HOST}:${c.ports[c.probe.port]}`,
        ports: c.ports,
        uptimeSeconds: running ? uptimeSeconds({ startedAt: inspected.State.StartedAt }) : 0,
        persists: c.volume,
      };
    }),
  );
  const health = await stackHealth(state);
  const e = endpoints(state);
  const pids = readPids(docker.pidsFile);
  const processUp = uptimeSeconds(state);
  for (const [name, probe, grpc, http] of [
    ['admin', health.admin, state.ports.admin, state.ports.adminMetrics],
    ['proxy', health.proxy, state.ports.proxy, state.ports.proxyMetrics],
  ] as const) {
    components.push({
      name,
      kind: 'process',
      state: pids[name] !== undefined ? 'running' : 'stopped',
      health: probe.healthy ? 'healthy' : 'unhealthy',
      detail: probe.detail,
      endpoint: name === 'admin' ? e.admin : e.proxy,
      ports: { grpc, http },
      uptimeSeconds: processUp,
      persists: true,
    });
  }
  return {
    stack: 'docker',
    name: docker.name,
    engine: docker.engine,
    running: true,
    healthy: components.every((c) => c.health === 'healthy'),
    pid: state.pid,
    startedAt: state.startedAt,
    persist: true,
    dataDir: state.dataDir,
    logFile: state.logFile,
    namespaces: state.namespaces,
    components,
    tls: tlsStatus(state),
  };
}

function readPids(file: string): Record<string, number | undefined> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, number | undefined>;
  } catch {
    return {};
  }
}
