import { Flags } from '@oclif/core';

/** `--pattern-module`: pattern types from modules built with prismctl/sdk (docs/sdk.md). */
export const patternModuleFlag = {
  'pattern-module': Flags.string({
    description:
      'Module (path, or package resolved from the working directory) whose default export is a pattern definition built with prismctl/sdk; adds its pattern type (docs/sdk.md)',
    multiple: true,
  }),
};
