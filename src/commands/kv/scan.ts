import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags, keyValueClient } from '../../cli/data-flags.js';

export default class KvScan extends BaseCommand {
  static override summary = 'List keys with a prefix, one per line';
  static override enableJsonFlag = true;
  static override args = { prefix: Args.string({ description: 'Key prefix', default: '' }) };
  static override flags = {
    ...dataFlags,
    limit: Flags.integer({ description: 'Stop after this many keys', default: 1000, min: 1 }),
  };

  async run(): Promise<{ keys: string[] }> {
    const { args, flags } = await this.parse(KvScan);
    const client = await keyValueClient(flags);
    try {
      const keys: string[] = [];
      let cursor = '';
      do {
        const page = await client.scan(args.prefix, Math.min(1000, flags.limit - keys.length), cursor);
        keys.push(...page.keys);
        cursor = page.cursor;
      } while (cursor && keys.length < flags.limit);
      if (!this.jsonEnabled()) for (const key of keys) this.log(key);
      return { keys };
    } finally {
      client.close();
    }
  }
}
