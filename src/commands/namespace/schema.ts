import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { writeOutput } from '../../cli/output.js';
import { renderNamespaceSchema } from '../../config/json-schema.js';

export default class NamespaceSchema extends BaseCommand {
  static override summary = 'Print the namespace JSON Schema (generated from the proto descriptors)';
  static override description =
    'Point yaml-language-server at it with `# yaml-language-server: $schema=<path>` to get validation and completion in your editor.';
  static override examples = ['<%= config.bin %> namespace schema -o namespace.schema.json'];
  static override flags = {
    output: Flags.string({ char: 'o', description: 'Write to this file instead of stdout' }),
    force: Flags.boolean({ description: 'Overwrite an existing output file' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(NamespaceSchema);
    await writeOutput(renderNamespaceSchema(), flags.output, {
      force: flags.force,
      overwriteHint: 'pass --force to overwrite it',
    });
  }
}
