import { execute, settings } from '@oclif/core';

/**
 * The CLI's entry once bin/run.js has checked the Node version: oclif, bundled with the commands
 * so that they share one copy of it (its config cache and Command class).
 */
export async function main(dir: string): Promise<void> {
  // The commands run are always the built bundles: oclif must not look for tsconfig.json and
  // TypeScript sources, which it otherwise does when NODE_ENV is development or test.
  settings.enableAutoTranspile = false;
  await execute({ dir });
}

/** oclif's error report, for the fast path (src/cli/lite/run.ts) when a command fails unexpectedly. */
export { handle } from '@oclif/core';
