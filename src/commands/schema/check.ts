import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { readSchemaFile, registryClient, registryFlags, schemaTypeFlag } from '../../cli/schema-flags.js';

interface Verdict {
  subject: string;
  compatible: boolean;
  messages: string[];
}

export default class SchemaCheck extends BaseCommand {
  static override summary = 'Check whether a schema could be registered under a subject (exit 1 when not)';
  static override description =
    'Against version latest, the subject’s compatibility mode decides (all versions when it is _TRANSITIVE); against a given version, that version alone. Nothing is stored.';
  static override examples = [
    '<%= config.bin %> schema check orders.events-value order-v3.avsc',
    '<%= config.bin %> schema check orders.events-value order-v3.avsc --version 1 --json',
  ];
  static override enableJsonFlag = true;
  static override args = {
    subject: Args.string({ description: 'Subject', required: true }),
    file: Args.string({ description: 'Schema file', required: true }),
  };
  static override flags = {
    ...registryFlags,
    type: schemaTypeFlag,
    version: Flags.string({ description: 'Version number or latest', default: 'latest' }),
  };

  async run(): Promise<Verdict> {
    const { args, flags } = await this.parse(SchemaCheck);
    const { schema, schemaType } = readSchemaFile(args.file, flags.type);
    const client = await registryClient(flags);
    const report = await client.check(args.subject, flags.version, schema, schemaType);
    const verdict = { subject: args.subject, compatible: report.is_compatible, messages: report.messages };
    if (!verdict.compatible) {
      if (this.jsonEnabled()) this.logJson(verdict);
      else
        this.write(
          `incompatible with ${args.subject} ${flags.version}:\n${verdict.messages.map((m) => `  ${m}\n`).join('')}`,
        );
      this.exit(1);
    }
    if (!this.jsonEnabled()) this.write(`compatible with ${args.subject} ${flags.version}\n`);
    return verdict;
  }
}
