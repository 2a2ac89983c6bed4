import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags, keyValueClient } from '../../cli/data-flags.js';

export default class KvDelete extends BaseCommand {
  static override summary = 'Delete a key through the proxy (deleting a missing key is not an error)';
  static override enableJsonFlag = true;
  static override args = { key: Args.string({ required: true, description: 'Key' }) };
  static override flags = { ...dataFlags };

  async run(): Promise<{ key: string; existed: boolean }> {
    const { args, flags } = await this.parse(KvDelete);
    const client = await keyValueClient(flags);
    try {
      const { existed } = await client.delete(args.key);
      if (!this.jsonEnabled()) this.log(existed ? `deleted ${args.key}` : `${args.key} did not exist`);
      return { key: args.key, existed };
    } finally {
      client.close();
    }
  }
}
