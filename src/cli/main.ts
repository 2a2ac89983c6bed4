import { execute } from '@oclif/core';

/**
 * The CLI's entry once bin/run.js has checked the Node version: oclif, bundled with the commands
 * so that they share one copy of it (its config cache and Command class).
 */
export async function main(dir: string): Promise<void> {
  await execute({ dir });
}
