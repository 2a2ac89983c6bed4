import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { writeOutput } from '../../cli/output.js';
import { renderCanonical, type CanonicalFormat } from '../../config/canonical.js';
import { isInputProblem } from '../../config/diagnostics.js';
import { renderReport } from '../../config/report-format.js';
import { validatePaths } from '../../config/validate.js';

export default class NamespaceExport extends BaseCommand {
  static override summary = 'Print namespaces in canonical form';
  static override description =
    'Defaults filled in, keys in a stable order, literal secrets redacted. Exporting the export gives the same bytes. Invalid input is reported on stderr and nothing is printed.';
  static override examples = [
    '<%= config.bin %> namespace export --file orders.yaml',
    '<%= config.bin %> namespace export --file namespaces/ --format json',
  ];
  static override flags = {
    file: Flags.string({
      char: 'f',
      description: 'Namespace file, directory or - for stdin',
      required: true,
      multiple: true,
    }),
    format: Flags.string({ description: 'Output format', options: ['yaml', 'json'], default: 'yaml' }),
    output: Flags.string({ char: 'o', description: 'Write to this file instead of stdout' }),
    force: Flags.boolean({ description: 'Overwrite an existing output file' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(NamespaceExport);
    const { report, loaded } = await validatePaths(flags.file);
    if (report.errors > 0 || report.warnings > 0) process.stderr.write(renderReport(report, 'text'));
    if (report.errors > 0) {
      process.exitCode = report.diagnostics.some(isInputProblem) ? 2 : 1;
      return;
    }
    const text = renderCanonical(
      loaded.map((l) => l.request),
      flags.format as CanonicalFormat,
    );
    await writeOutput(text, flags.output, {
      force: flags.force,
      overwriteHint: 'pass --force to overwrite it',
    });
  }
}
