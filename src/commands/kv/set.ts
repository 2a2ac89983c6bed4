import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags, keyValueClient } from '../../cli/data-flags.js';
import { durationSeconds, readValue } from '../../cli/values.js';

export default class KvSet extends BaseCommand {
  static override summary = 'Set a key through the proxy';
  static override examples = [
    '<%= config.bin %> kv set -n playground greeting hello --ttl 30s',
    'cat image.png | <%= config.bin %> kv set -n playground avatar',
  ];
  static override enableJsonFlag = true;
  static override args = {
    key: Args.string({ required: true, description: 'Key' }),
    value: Args.string({ description: 'Value (default: --file or stdin)', ignoreStdin: true }),
  };
  static override flags = {
    ...dataFlags,
    ttl: Flags.string({ description: 'Expire after this long, e.g. 30s (default: the pattern default_ttl)' }),
    file: Flags.string({ char: 'f', description: 'Read the value from this file' }),
  };

  async run(): Promise<{ key: string; bytes: number; ttlSeconds: number }> {
    const { args, flags } = await this.parse(KvSet);
    const ttlSeconds = durationSeconds(flags.ttl, 'ttl');
    const value = await readValue(args.value, flags.file);
    const client = await keyValueClient(flags);
    try {
      await client.set(args.key, value, ttlSeconds);
      if (!this.jsonEnabled())
        this.logToStderr(
          `set ${args.key} (${value.length} bytes${ttlSeconds ? `, ttl ${ttlSeconds}s` : ''})`,
        );
      return { key: args.key, bytes: value.length, ttlSeconds };
    } finally {
      client.close();
    }
  }
}
