import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags, keyValueClient } from '../../cli/data-flags.js';

export default class KvExists extends BaseCommand {
  static override summary = 'Check whether a key exists (exit 0 yes, 1 no)';
  static override enableJsonFlag = true;
  static override args = { key: Args.string({ required: true, description: 'Key' }) };
  static override flags = { ...dataFlags };

  async run(): Promise<{ key: string; exists: boolean }> {
    const { args, flags } = await this.parse(KvExists);
    const client = await keyValueClient(flags);
    try {
      const { exists } = await client.exists(args.key);
      if (!exists) process.exitCode = 1;
      if (!this.jsonEnabled()) this.log(exists ? 'yes' : 'no');
      return { key: args.key, exists };
    } finally {
      client.close();
    }
  }
}
