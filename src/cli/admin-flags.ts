import { Flags } from '@oclif/core';
import { DEFAULT_ADMIN_ENDPOINT } from '../client/admin-client.js';

/** --admin for every command that talks to the control plane. */
export const adminFlag = Flags.string({
  description: 'Control-plane endpoint host:port',
  env: 'PRISM_ADMIN_ENDPOINT',
  default: DEFAULT_ADMIN_ENDPOINT,
  helpGroup: 'CONNECTION',
});
