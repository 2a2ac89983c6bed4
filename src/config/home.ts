import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The prism home: PRISM_HOME, or ~/.prism. Created with mode 0700 on first use. */
export function prismHome(): string {
  const dir = process.env.PRISM_HOME || join(homedir(), '.prism');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}
