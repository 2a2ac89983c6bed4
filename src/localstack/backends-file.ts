/** The Docker stack's working directory and the admin's backend catalog written into it. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { BACKENDS } from '../config/registry.js';
import type { StackConfig } from './catalog.js';
import { containerName } from './containers.js';
import { DEV_HOST } from './ports.js';
import { devDir } from './state.js';

export function stackDir(stack: string): string {
  const dir = join(devDir(), `docker-${stack}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** How the admin reaches each backend component, from the component's ports. */
const ENDPOINT: Readonly<Record<string, (p: Record<string, number>) => string>> = {
  redis: (p) => `redis://${DEV_HOST}:${p.redis}`,
  nats: (p) => `nats://${DEV_HOST}:${p.client}`,
  postgres: (p) => `postgres://${DEV_HOST}:${p.postgres}/prism`,
  kafka: (p) => `kafka://${DEV_HOST}:${p.broker}`,
};

/** One instance per running backend, plus the in-process ones (the file's content as an object). */
export function stackBackends(
  dir: string,
  config: StackConfig,
): Record<string, Array<{ name: string; endpoint: string }>> {
  const backends: Record<string, Array<{ name: string; endpoint: string }>> = {
    memstore: [{ name: 'local-memstore', endpoint: 'memory://' }],
    sqlite: [{ name: 'local-sqlite', endpoint: `file:${join(dir, 'sqlite')}` }],
  };
  for (const c of config.components) {
    const make = ENDPOINT[c.name];
    if (make && BACKENDS[c.name])
      backends[c.name] = [{ name: containerName(config.stack, c.name), endpoint: make(c.ports) }];
  }
  return backends;
}

/** Writes `backends.yaml` (0600) into `dir` and returns its path. */
export function writeBackends(dir: string, config: StackConfig): string {
  const file = join(dir, 'backends.yaml');
  writeFileSync(
    file,
    `# Written by prismctl dev up for stack ${config.stack}.\n${stringify({ backends: stackBackends(dir, config) })}`,
    { mode: 0o600 },
  );
  return file;
}
