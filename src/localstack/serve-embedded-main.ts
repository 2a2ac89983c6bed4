/**
 * Entry of the background embedded stack that `prismctl dev up` starts. It runs the stack without
 * going through oclif again, which saves a CLI start-up (~0.3 s) on the way to ready. The file
 * name keeps "serve-embedded" in the process's command line, which `dev down` checks before it
 * signals a pid.
 */
import { createLogger } from '../logging.js';
import type { DevTlsFiles } from './dev-tls.js';
import type { DevPorts } from './ports.js';
import { serveEmbedded } from './serve.js';

interface Arguments {
  ports: DevPorts;
  persist: boolean;
  namespacePaths: string[];
  version: string;
  tls?: DevTlsFiles;
}

const logger = createLogger('prism-dev');
try {
  const args = JSON.parse(process.argv[2] ?? '') as Arguments;
  await serveEmbedded({ ...args, foreground: false, logger });
} catch (err) {
  logger.error({ err: (err as Error).message }, 'the embedded stack failed');
  process.exitCode = 1;
}
