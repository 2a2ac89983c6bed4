/**
 * What `dev up` on Docker checks before any container starts: whether this stack's servers are
 * already running (then nothing of theirs is started again), that no other local stack runs, and
 * that the admin's and proxy's ports are free.
 */
import { PrismError } from '../errors.js';
import { checkPorts, describePortProblem, portSpecs, type DevPorts } from './ports.js';
import { stackAlive, type DevState } from './state.js';

/** True when `existing` is this Docker stack with its supervisor still alive. */
export function serversRunning(
  existing: DevState | undefined,
  stack: string,
): existing is DevState & { docker: NonNullable<DevState['docker']> } {
  return existing?.stack === 'docker' && existing.docker?.name === stack && stackAlive(existing.pid);
}

/**
 * Throws E_UNAVAILABLE when another live stack holds the state file, or (when this stack's
 * servers are not running) when an admin or proxy port is taken; nothing has been started then.
 */
export async function checkBeforeUp(
  existing: DevState | undefined,
  running: boolean,
  ports: DevPorts,
): Promise<void> {
  if (existing && !running && stackAlive(existing.pid)) {
    throw new PrismError(
      'E_UNAVAILABLE',
      `another local stack (${existing.stack}, pid ${existing.pid}) is running`,
      {
        hint: 'stop it with `prismctl dev down` first',
      },
    );
  }
  if (running) return;
  const problems = await checkPorts(portSpecs(ports, { idp: false }));
  if (problems.length > 0) {
    throw new PrismError('E_UNAVAILABLE', problems.map((p) => describePortProblem(p)).join('; '), {
      hint: 'nothing was started',
    });
  }
}
