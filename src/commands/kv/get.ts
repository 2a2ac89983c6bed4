import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags, keyValueClient } from '../../cli/data-flags.js';

export default class KvGet extends BaseCommand {
  static override summary = 'Get a key through the proxy (raw value on stdout; exit 1 when missing)';
  static override enableJsonFlag = true;
  static override args = { key: Args.string({ required: true, description: 'Key' }) };
  static override flags = { ...dataFlags };

  async run(): Promise<{ key: string; found: boolean; value: string }> {
    const { args, flags } = await this.parse(KvGet);
    const client = await keyValueClient(flags);
    try {
      const res = await client.get(args.key);
      if (!res.found) {
        process.exitCode = 1;
        if (!this.jsonEnabled()) this.logToStderr(`${args.key}: not found`);
      } else if (!this.jsonEnabled()) process.stdout.write(res.value);
      return { key: args.key, found: res.found, value: Buffer.from(res.value).toString('base64') };
    } finally {
      client.close();
    }
  }
}
