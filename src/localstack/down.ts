/**
 * Stopping the Docker stack: the supervisor (which stops admin and proxy), then the containers and
 * network with the stack label, and the volumes when asked. Shared by `dev down` and
 * `dev up --foreground`.
 */
import { rmSync } from 'node:fs';
import { connectEngine } from './docker-engine.js';
import { stopSupervisor } from './up-supervisor.js';
import { downDockerStack, type DownResult } from './docker-stack.js';
import { readState, removeState, type DevState } from './state.js';

export interface DockerDownResult extends DownResult {
  /** False when the supervisor needed SIGKILL. */
  cleanStop: boolean;
}

export async function stopDockerStack(
  target: { engine: string; stack: string; state?: DevState },
  options: { volumes: boolean; timeoutMs: number },
): Promise<DockerDownResult> {
  let cleanStop = true;
  if (target.state) {
    cleanStop = await stopSupervisor(target.state.pid, options.timeoutMs);
    if (target.state.docker) rmSync(target.state.docker.pidsFile, { force: true });
  }
  const removed = await downDockerStack(connectEngine(target.engine), target.stack, {
    volumes: options.volumes,
    stopTimeoutSeconds: Math.max(1, Math.round(options.timeoutMs / 1000)),
  });
  const current = readState();
  if (current && (!target.state || current.pid === target.state.pid)) removeState();
  return { ...removed, cleanStop };
}
