/**
 * Undoes a `dev up` on Docker that failed after its containers were up: stops the supervisor it
 * started (and forgets its state), and removes the containers this run started, unless
 * --keep-on-failure.
 */
import type Docker from 'dockerode';
import type { StackConfig } from './catalog.js';
import { downDockerStack, type ComponentResult } from './docker-stack.js';
import { readState, removeState } from './state.js';
import { stopSupervisor } from './up-supervisor.js';

export interface FailedUp {
  docker: Docker;
  config: StackConfig;
  /** True when the admin and proxy were running before this run: they are left alone. */
  serversWereRunning: boolean;
  keepOnFailure: boolean;
  components: ComponentResult[];
  /** Containers this run started or recreated. */
  startedNow: string[];
}

export async function undoFailedUp(f: FailedUp): Promise<void> {
  if (!f.serversWereRunning) {
    const state = readState();
    if (state?.stack === 'docker' && state.docker?.name === f.config.stack) {
      await stopSupervisor(state.pid, 10_000);
      removeState();
    }
  }
  if (f.keepOnFailure || f.startedNow.length === 0) return;
  await Promise.all(
    f.startedNow.map((name) =>
      f.docker
        .getContainer(name)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  if (f.components.every((c) => c.action !== 'already running')) {
    await downDockerStack(f.docker, f.config.stack, { volumes: false }).catch(() => undefined);
  }
}
