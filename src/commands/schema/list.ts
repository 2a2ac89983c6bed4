import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { registryClient, registryFlags } from '../../cli/schema-flags.js';

export default class SchemaList extends BaseCommand {
  static override summary = 'List subjects, or the versions of one subject';
  static override examples = [
    '<%= config.bin %> schema list',
    '<%= config.bin %> schema list orders.events-value --json',
  ];
  static override enableJsonFlag = true;
  static override args = { subject: Args.string({ description: 'Subject whose versions to list' }) };
  static override flags = { ...registryFlags };

  async run(): Promise<string[] | number[]> {
    const { args, flags } = await this.parse(SchemaList);
    const client = await registryClient(flags);
    const rows = args.subject ? await client.versions(args.subject) : await client.subjects();
    if (!this.jsonEnabled())
      this.write(rows.length === 0 ? 'no subjects\n' : rows.map((r) => `${r}\n`).join(''));
    return rows;
  }
}
