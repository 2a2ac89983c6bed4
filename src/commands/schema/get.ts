import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { registryClient, registryFlags } from '../../cli/schema-flags.js';
import { UsageError } from '../../errors.js';

interface Shown {
  subject?: string;
  version?: number;
  id: number;
  schemaType: string;
  schema: string;
}

export default class SchemaGet extends BaseCommand {
  static override summary = 'Show a schema: a subject’s version (default latest), or by global id';
  static override examples = [
    '<%= config.bin %> schema get orders.events-value',
    '<%= config.bin %> schema get orders.events-value --version 2 --json',
    '<%= config.bin %> schema get --id 7',
  ];
  static override enableJsonFlag = true;
  static override args = { subject: Args.string({ description: 'Subject' }) };
  static override flags = {
    ...registryFlags,
    version: Flags.string({ description: 'Version number or latest', default: 'latest' }),
    id: Flags.integer({ description: 'Global schema id (instead of a subject)', min: 1 }),
  };

  async run(): Promise<Shown> {
    const { args, flags } = await this.parse(SchemaGet);
    const client = await registryClient(flags);
    let shown: Shown;
    if (flags.id !== undefined) {
      const found = await client.byId(flags.id);
      shown = { id: flags.id, schemaType: found.schemaType ?? 'AVRO', schema: found.schema };
    } else if (args.subject) {
      const v = await client.version(args.subject, flags.version);
      shown = {
        subject: v.subject,
        version: v.version,
        id: v.id,
        schemaType: v.schemaType ?? 'AVRO',
        schema: v.schema,
      };
    } else throw new UsageError('name a subject or give --id');
    if (!this.jsonEnabled()) this.write(shown.schema.endsWith('\n') ? shown.schema : `${shown.schema}\n`);
    return shown;
  }
}
