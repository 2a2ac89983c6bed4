/**
 * Entry of the background supervisor `prismctl dev up` starts for the Docker stack: it runs the
 * bundled admin and proxy as child processes (see supervisor.ts) until SIGTERM or SIGINT, keeping
 * their pids in a 0600 file for `dev status`. The file name ("supervise-main") stays in the
 * process's command line, which `dev down` checks before it signals the pid.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { createLogger } from '../logging.js';
import { Supervisor, type ChildSpec } from './supervisor.js';

interface Arguments {
  children: ChildSpec[];
  pidsFile: string;
}

const logger = createLogger('prism-dev-supervisor');
const args = JSON.parse(process.argv[2] ?? '') as Arguments;
const writePids = () =>
  writeFileSync(args.pidsFile, `${JSON.stringify({ supervisor: process.pid, ...supervisor.pids() })}\n`, {
    mode: 0o600,
  });
const supervisor = new Supervisor({
  spawned(name, pid) {
    logger.info({ child: name, pid }, 'child started');
    writePids();
  },
  exited(name, code, signal, restartInMs) {
    if (restartInMs === undefined)
      logger.error({ child: name, code, signal }, 'child exited too often; left down');
    else logger.warn({ child: name, code, signal, restartInMs }, 'child exited; restarting');
  },
});
await supervisor.start(args.children);
const stop = async (signal: string) => {
  logger.info({ signal }, 'stopping');
  await supervisor.stop();
  rmSync(args.pidsFile, { force: true });
  logger.info('stopped');
  process.exit(0);
};
process.once('SIGTERM', () => void stop('SIGTERM'));
process.once('SIGINT', () => void stop('SIGINT'));
