import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { PrismError } from '../../errors.js';
import { readState, removeState, stackAlive } from '../../localstack/state.js';

export default class DevDown extends BaseCommand {
  static override summary = 'Stop the local stack and remove its state file';
  static override description =
    'Sends SIGTERM to the embedded stack, waits for it to exit (SIGKILL after --timeout), and removes <prism home>/dev/state.json. Data kept with `dev up --persist` stays.';
  static override examples = ['<%= config.bin %> dev down'];
  static override flags = {
    timeout: Flags.integer({
      description: 'Seconds to wait for a clean stop before SIGKILL',
      default: 10,
      min: 1,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DevDown);
    const state = readState();
    if (!state) {
      this.log('Nothing is running: there is no local stack to stop.');
      return;
    }
    if (!stackAlive(state.pid)) {
      removeState();
      this.log(
        `Nothing is running: the embedded stack (pid ${state.pid}) had already exited; removed its state file.`,
      );
      return;
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
