import { Args, Flags } from '@oclif/core';
import { createTwoFilesPatch } from 'diff';
import { BaseCommand } from '../../cli/base-command.js';
import { readSchemaFile, registryClient, registryFlags, schemaTypeFlag } from '../../cli/schema-flags.js';

interface SchemaDiffResult {
  subject: string;
  from: string;
  to: string;
  /** Unified diff, "" when equal. */
  diff: string;
}

export default class SchemaDiff extends BaseCommand {
  static override summary = 'Show how two versions of a subject, or a version and a file, differ';
  static override description =
    'A unified diff, from → to; Avro and JSON schemas are compared pretty-printed. Exit codes: 0 no difference, 1 differences, 2 error.';
  static override examples = [
    '<%= config.bin %> schema diff orders.events-value --from 1 --to 2',
    '<%= config.bin %> schema diff orders.events-value --file order-v3.avsc',
  ];
  static override enableJsonFlag = true;
  static override args = { subject: Args.string({ description: 'Subject', required: true }) };
  static override flags = {
    ...registryFlags,
    from: Flags.string({ description: 'Version to compare from (number or latest)', default: 'latest' }),
    to: Flags.string({ description: 'Version to compare to (number or latest)', exclusive: ['file'] }),
    file: Flags.string({ description: 'Schema file to compare to, instead of a version' }),
    type: schemaTypeFlag,
  };

  async run(): Promise<SchemaDiffResult> {
    const { args, flags } = await this.parse(SchemaDiff);
    const client = await registryClient(flags);
    const from = await client.version(args.subject, flags.from);
    let to: { label: string; schema: string };
    if (flags.file) to = { label: flags.file, schema: readSchemaFile(flags.file, flags.type).schema };
    else {
      const version = await client.version(args.subject, flags.to ?? 'latest');
      to = { label: `${args.subject}@${version.version}`, schema: version.schema };
    }
    const before = pretty(from.schema);
    const after = pretty(to.schema);
    const fromLabel = `${args.subject}@${from.version}`;
    const diff =
      before === after ? '' : createTwoFilesPatch(fromLabel, to.label, before, after, '', '', { context: 3 });
    if (!this.jsonEnabled()) this.write(diff);
    process.exitCode = diff ? 1 : 0;
    return { subject: args.subject, from: fromLabel, to: to.label, diff };
  }

  protected override exitCodeFor(): number {
    return 2;
  }
}

/** JSON (Avro, JSON Schema) indented, so that a one-line schema diffs by field; other text as it is. */
function pretty(schema: string): string {
  try {
    return `${JSON.stringify(JSON.parse(schema), null, 2)}\n`;
  } catch {
    return schema.endsWith('\n') ? schema : `${schema}\n`;
  }
}
