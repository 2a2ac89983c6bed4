import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { readSchemaFile, registryClient, registryFlags, schemaTypeFlag } from '../../cli/schema-flags.js';

export default class SchemaRegister extends BaseCommand {
  static override summary = 'Register a schema under a subject (refused when incompatible)';
  static override description =
    'Subjects are <namespace>.<topic>-value or <namespace>.<topic>-key. The schema is checked against the subject’s versions by its compatibility mode; an incompatible one is refused with what broke (docs/schemas.md).';
  static override examples = [
    '<%= config.bin %> schema register orders.events-value order.avsc',
    '<%= config.bin %> schema register orders.events-value order.proto --json',
  ];
  static override enableJsonFlag = true;
  static override args = {
    subject: Args.string({ description: 'Subject', required: true }),
    file: Args.string({
      description: 'Schema file (.avsc, .json, .proto, or a FileDescriptorSet .binpb)',
      required: true,
    }),
  };
  static override flags = { ...registryFlags, type: schemaTypeFlag };

  async run(): Promise<{ subject: string; id: number; version: number }> {
    const { args, flags } = await this.parse(SchemaRegister);
    const { schema, schemaType } = readSchemaFile(args.file, flags.type);
    const client = await registryClient(flags);
    const { id } = await client.register(args.subject, schema, schemaType);
    const { version } = await client.lookup(args.subject, schema, schemaType);
    const result = { subject: args.subject, id, version };
    if (!this.jsonEnabled()) this.write(`${args.subject} version ${result.version} (schema id ${id})\n`);
    return result;
  }
}
