import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { PrismError } from '../../errors.js';
import { findEngine } from '../../localstack/docker.js';
import { readState, removeState, stackAlive, type DevState } from '../../localstack/state.js';

export default class DevDown extends BaseCommand {
  static override summary = 'Stop the local stack and remove its state file';
  static override description = `Docker stack: stops the supervised admin and proxy, removes every container and network labelled with the stack, and keeps the volumes unless --volumes. It finds the stack's containers by label even when the state file is gone.
Embedded stack: sends SIGTERM, waits for it to exit (SIGKILL after --timeout), and removes <prism home>/dev/state.json. Data kept with \`dev up --persist\` stays.`;
  static override examples = ['<%= config.bin %> dev down', '<%= config.bin %> dev down --volumes'];
  static override enableJsonFlag = true;
  static override flags = {
    timeout: Flags.integer({
      description: 'Seconds to wait for a clean stop before SIGKILL',
      default: 10,
      min: 1,
    }),
    volumes: Flags.boolean({ description: "Also remove the Docker stack's data volumes" }),
    stack: Flags.string({
      description: 'Docker stack to remove when no state file names it (default dev)',
      default: 'dev',
    }),
  };

  async run(): Promise<object> {
    const { flags } = await this.parse(DevDown);
    const state = readState();
    if (state?.stack === 'docker' && state.docker) {
      return this.downDocker(state.docker.engine, state.docker.name, state, flags);
    }
    if (!state) {
      const { found } = await findEngine();
      if (found) {
        const { stackLeftovers } = await import('../../localstack/docker-stack.js');
        const { connectEngine } = await import('../../localstack/docker-engine.js');
        const left = await stackLeftovers(connectEngine(found.target), flags.stack);
        if (left.containers + left.networks + (flags.volumes ? left.volumes : 0) > 0) {
          return this.downDocker(found.target, flags.stack, undefined, flags);
        }
      }
      this.log('Nothing is running: there is no local stack to stop.');
      return { stopped: false };
    }
    if (!stackAlive(state.pid)) {
      removeState();
      this.log(
        `Nothing is running: the embedded stack (pid ${state.pid}) had already exited; removed its state file.`,
      );
      return { stopped: false, stack: 'embedded' };
    }
    process.kill(state.pid, 'SIGTERM');
    const clean = await waitForExit(state.pid, flags.timeout * 1000);
    if (!clean) {
      try {
        process.kill(state.pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
      if (!(await waitForExit(state.pid, 2000))) {
        throw new PrismError(
          'E_INTERNAL',
          `the embedded stack (pid ${state.pid}) did not exit even after SIGKILL`,
        );
      }
    }
    removeState();
    this.log(
      `Stopped the embedded stack (pid ${state.pid})${clean ? '' : ` with SIGKILL after ${flags.timeout} s`}; ${state.persist ? `its data stays in ${state.dataDir}` : 'its data was removed'}.`,
    );
    return { stopped: true, stack: 'embedded', pid: state.pid, clean };
  }

  private async downDocker(
    engine: string,
    stack: string,
    state: DevState | undefined,
    flags: { timeout: number; volumes: boolean },
  ): Promise<object> {
    const { stopDockerStack } = await import('../../localstack/down.js');
    const result = await stopDockerStack(
      { engine, stack, ...(state ? { state } : {}) },
      { volumes: flags.volumes, timeoutMs: flags.timeout * 1000 },
    );
    this.log(
      `Stopped Docker stack '${stack}': removed ${result.containers.length} container${result.containers.length === 1 ? '' : 's'}${result.containers.length ? ` (${result.containers.join(', ')})` : ''}${result.networks.length ? ` and network ${result.networks.join(', ')}` : ''}; admin and proxy stopped${result.cleanStop ? '' : ' with SIGKILL'}.`,
    );
    this.log(
      flags.volumes
        ? `Removed ${result.volumes.length} volume${result.volumes.length === 1 ? '' : 's'}${result.volumes.length ? ` (${result.volumes.join(', ')})` : ''}.`
        : `Volumes stay (prism-${stack}-<component>-data); \`prismctl dev down --volumes\` removes them.`,
    );
    return { stopped: true, stack: 'docker', name: stack, ...result };
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!stackAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !stackAlive(pid);
}
