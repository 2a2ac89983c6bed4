import { BaseCommand } from '../../cli/base-command.js';
import { tlsStatus, type ComponentStatus, type DevStatus } from '../../localstack/status.js';
import { stackHealth } from '../../localstack/health.js';
import {
  endpoints,
  formatSeconds,
  readState,
  stackAlive,
  uptime,
  uptimeSeconds,
} from '../../localstack/state.js';

export default class DevStatusCommand extends BaseCommand {
  static override summary =
    'Show the local stack: each component with state, health, ports, uptime and persistence';
  static override examples = ['<%= config.bin %> dev status', '<%= config.bin %> dev status --json'];
  static override enableJsonFlag = true;

  async run(): Promise<DevStatus> {
    await this.parse(DevStatusCommand);
    const state = readState();
    if (!state || !stackAlive(state.pid)) {
      this.log(
        state
          ? `The embedded stack (pid ${state.pid}) is not running any more; \`prismctl dev up\` starts it.`
          : 'No local stack is running; `prismctl dev up` starts one.',
      );
      return { stack: 'none', running: false, healthy: false, namespaces: [], components: [] };
    }
    if (state.stack === 'docker' && state.docker) {
      const { dockerStatus } = await import('../../localstack/docker-status.js');
      const status = await dockerStatus(state);
      this.log(
        `Docker stack '${status.name}' on ${status.engine}, ${status.healthy ? 'healthy' : 'NOT healthy'}, supervisor pid ${state.pid}`,
      );
      for (const c of status.components) {
        const ports = Object.entries(c.ports)
          .map(([n, p]) => `${n} ${p}`)
          .join(', ');
        this.log(
          `  ${c.name.padEnd(9)} ${c.state.padEnd(8)} ${c.health.padEnd(9)} up ${formatSeconds(c.uptimeSeconds).padEnd(7)} ${c.persists ? 'persists ' : 'ephemeral'}  ${ports}${c.health === 'healthy' ? '' : `  (${c.detail})`}`,
        );
      }
      this.log(`  namespaces: ${state.namespaces.join(', ') || '(none)'}`);
      this.log(`  ${tlsLine(status.tls)}`);
      return status;
    }
    const health = await stackHealth(state);
    const e = endpoints(state);
    const up = uptimeSeconds(state);
    const component = (
      name: string,
      grpc: number,
      http: number,
      probe: { healthy: boolean; detail: string },
    ): ComponentStatus => ({
      name,
      state: 'running',
      health: probe.healthy ? 'healthy' : 'unhealthy',
      detail: probe.detail,
      endpoint: name === 'admin' ? e.admin : e.proxy,
      kind: 'process',
      ports: { grpc, http },
      uptimeSeconds: up,
      persists: state.persist,
    });
    const status: DevStatus = {
      stack: 'embedded',
      running: true,
      healthy: health.healthy,
      pid: state.pid,
      startedAt: state.startedAt,
      persist: state.persist,
      dataDir: state.dataDir,
      logFile: state.logFile,
      namespaces: state.namespaces,
      tls: tlsStatus(state),
      components: [
        component('admin', state.ports.admin, state.ports.adminMetrics, health.admin),
        component('proxy', state.ports.proxy, state.ports.proxyMetrics, health.proxy),
      ],
    };
    this.log(
      `Embedded stack, pid ${state.pid}, up ${uptime(state)}, data ${state.persist ? `persists in ${state.dataDir}` : 'does not persist'}`,
    );
    for (const c of status.components) {
      this.log(
        `  ${c.name.padEnd(6)} ${c.state}  ${c.health.padEnd(9)}  grpc ${c.endpoint}  http ${c.ports.http}${c.health === 'healthy' ? '' : `  (${c.detail})`}`,
      );
    }
    this.log(`  namespaces: ${state.namespaces.join(', ') || '(none)'}`);
    this.log(`  ${tlsLine(status.tls)}`);
    return status;
  }
}

function tlsLine(tls: DevStatus['tls']): string {
  return tls?.enabled ? `tls: on (CA ${tls.caFile})` : 'tls: off (plaintext; started with --no-tls)';
}
