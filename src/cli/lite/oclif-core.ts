/**
 * What `@oclif/core` resolves to in the fast-start bundle (scripts/bundle.js): oclif's own flag and
 * argument builders and parser, with prismctl's light Command. See src/cli/lite/command.ts.
 */
export { Command } from './command.js';
export * as Flags from '@oclif/core/flags';
export * as Args from '@oclif/core/args';
