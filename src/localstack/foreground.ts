/**
 * `dev up --foreground` on Docker: streams the admin's and proxy's log lines until Ctrl-C or
 * SIGTERM, then stops the whole stack (volumes stay).
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { stopDockerStack } from './down.js';
import type { DevState } from './state.js';

export async function runAttached(state: DevState, print: (line: string) => void): Promise<void> {
  const docker = state.docker!;
  const files = Object.entries(docker.logFiles).map(([name, file]) => ({ name, file, offset: size(file) }));
  const timer = setInterval(() => {
    for (const f of files) {
      const end = size(f.file);
      if (end <= f.offset) continue;
      const fd = openSync(f.file, 'r');
      const buffer = Buffer.alloc(end - f.offset);
      readSync(fd, buffer, 0, buffer.length, f.offset);
      closeSync(fd);
      f.offset = end;
      for (const line of buffer.toString('utf8').split('\n')) if (line) print(`${f.name} | ${line}`);
    }
  }, 200);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  clearInterval(timer);
  await stopDockerStack(
    { engine: docker.engine, stack: docker.name, state },
    { volumes: false, timeoutMs: 10_000 },
  );
}

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
