import { Flags } from '@oclif/core';
import { LOG_LEVEL_ENV, LOG_LEVELS } from '../logging.js';

/** `--log-level` of every server command; PRISM_LOG_LEVEL sets it too. */
export const logLevelFlag = Flags.string({
  description: 'Log level',
  options: [...LOG_LEVELS],
  env: LOG_LEVEL_ENV,
  default: 'info',
});
