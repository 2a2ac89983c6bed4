import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags, keyValueClient } from '../../cli/data-flags.js';

export default class KvTtl extends BaseCommand {
  static override summary = 'Show the time to live of a key (-1 no expiry, -2 missing)';
  static override enableJsonFlag = true;
  static override args = { key: Args.string({ required: true, description: 'Key' }) };
  static override flags = { ...dataFlags };

  async run(): Promise<{ key: string; ttlMs: number }> {
    const { args, flags } = await this.parse(KvTtl);
    const client = await keyValueClient(flags);
    try {
      const ttlMs = Number((await client.ttl(args.key)).ttlMs);
      if (!this.jsonEnabled())
        this.log(ttlMs === -2 ? 'missing' : ttlMs === -1 ? 'no expiry' : `${(ttlMs / 1000).toFixed(1)}s`);
      if (ttlMs === -2) process.exitCode = 1;
      return { key: args.key, ttlMs };
    } finally {
      client.close();
    }
  }
}
