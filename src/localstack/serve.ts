import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { startEmbeddedStack } from './embedded.js';
import type { DevTlsFiles } from './dev-tls.js';
import { loadEmbeddedNamespaces } from './namespaces.js';
import { DEV_HOST, type DevPorts } from './ports.js';
import {
  embeddedLogFile,
  persistentDataDir,
  readState,
  removeState,
  writeState,
  type DevState,
} from './state.js';

export interface ServeOptions {
  ports: DevPorts;
  persist: boolean;
  namespacePaths: string[];
  foreground: boolean;
  logger: Logger;
  version: string;
  /** The admin and proxy serve TLS with these files (undefined: plaintext, --no-tls). */
  tls?: DevTlsFiles | undefined;
  /** Called once every component is ready. */
  onReady?: (state: DevState) => void;
  /** Resolves when the stack should stop (default: SIGINT or SIGTERM). */
  until?: Promise<unknown>;
}

export { persistentDataDir } from './state.js';

/**
 * Runs the embedded stack in this process until SIGINT/SIGTERM: writes the state file (starting,
 * then ready), and on the way out stops every component, removes the state file and, unless the
 * data persists, the temporary data directory.
 */
export async function serveEmbedded(options: ServeOptions): Promise<void> {
  const { logger } = options;
  const selection = await loadEmbeddedNamespaces(options.namespacePaths);
  const dataDir = options.persist ? persistentDataDir() : mkdtempSync(join(tmpdir(), 'prism-dev-'));
  const state: DevState = {
    stack: 'embedded',
    pid: process.pid,
    phase: 'starting',
    host: DEV_HOST,
    ports: options.ports,
    startedAt: new Date().toISOString(),
    persist: options.persist,
    dataDir,
    logFile: embeddedLogFile(),
    foreground: options.foreground,
    namespaces: [],
    skipped: selection.skipped,
    ...(options.tls ? { tls: options.tls } : {}),
  };
  writeState(state);
  const stopSignal =
    options.until ??
    new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
  const cleanup = () => {
    if (readState()?.pid === process.pid) removeState();
    if (!options.persist) rmSync(dataDir, { recursive: true, force: true });
  };
  let stack;
  try {
    stack = await startEmbeddedStack({
      host: DEV_HOST,
      ports: options.ports,
      dataDir,
      namespaces: selection,
      logger,
      version: options.version,
      tls: options.tls,
    });
  } catch (err) {
    logger.error({ err }, 'embedded stack failed to start');
    cleanup();
    throw err;
  }
  const ready: DevState = { ...state, phase: 'ready', namespaces: stack.applied, issuer: stack.issuer };
  writeState(ready);
  options.onReady?.(ready);
  const signal = await stopSignal;
  logger.info({ signal }, 'stopping the embedded stack');
  await stack.stop();
  cleanup();
  logger.info('embedded stack stopped');
}
