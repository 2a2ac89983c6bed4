import { Args, Flags } from '@oclif/core';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { adminClient, adminFlags } from '../../cli/admin-flags.js';
import { BaseCommand } from '../../cli/base-command.js';
import { writeOutput } from '../../cli/output.js';
import { renderCanonical, type CanonicalFormat } from '../../config/canonical.js';
import { isInputProblem } from '../../config/diagnostics.js';
import { renderReport } from '../../config/report-format.js';
import { validatePaths } from '../../config/validate.js';
import { UsageError } from '../../errors.js';
import type { NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';

export default class NamespaceExport extends BaseCommand {
  static override summary = 'Print namespaces in canonical form, from files or from the control plane';
  static override description = `Defaults filled in, keys in a stable order, literal secrets redacted; exporting the export gives the same bytes, and it re-applies as "unchanged".
With --file, reads local files (invalid input is reported on stderr and nothing is printed; -o names a file). With NAME... or --all, reads the control plane (-o names a directory that gets one <name>.yaml each).`;
  static override examples = [
    '<%= config.bin %> namespace export --file orders.yaml',
    '<%= config.bin %> namespace export orders',
    '<%= config.bin %> namespace export --all -o backup/',
  ];
  static override strict = false;
  static override args = {
    // ignoreStdin: with `--file -` the YAML on stdin must not be read as a namespace name.
    names: Args.string({ description: 'Namespace names on the control plane', ignoreStdin: true }),
  };
  static override flags = {
    file: Flags.string({
      char: 'f',
      description: 'Namespace file, directory or - for stdin',
      multiple: true,
      exclusive: ['all'],
    }),
    all: Flags.boolean({ description: 'Export every namespace on the control plane' }),
    format: Flags.string({ description: 'Output format', options: ['yaml', 'json'], default: 'yaml' }),
    output: Flags.string({ char: 'o', description: 'Output file (--file) or directory (control plane)' }),
    force: Flags.boolean({ description: 'Overwrite existing output files' }),
    ...adminFlags,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(NamespaceExport);
    const format = flags.format as CanonicalFormat;
    const names = argv as string[];
    if (flags.file) {
      if (names.length > 0) throw new UsageError('give either --file or namespace names, not both');
      await this.exportFiles(flags.file, format, flags.output, flags.force);
      return;
    }
    if (!flags.all && names.length === 0)
      throw new UsageError('nothing to export', 'pass namespace names, --all, or --file <path>');
    const client = await adminClient(flags);
    try {
      const wanted = flags.all ? (await client.list()).namespaces.map((n) => n.name) : names;
      const namespaces: NamespaceRequest[] = [];
      for (const name of wanted) namespaces.push((await client.export(name)).namespace!);
      if (!flags.output) {
        this.write(renderCanonical(namespaces, format));
        return;
      }
      await mkdir(flags.output, { recursive: true });
      for (const ns of namespaces) {
        const file = join(flags.output, `${ns.namespace}.${format}`);
        await writeOutput(renderCanonical([ns], format), file, {
          force: flags.force,
          overwriteHint: 'pass --force to overwrite it',
        });
        this.logToStderr(`wrote ${file}`);
      }
    } finally {
      client.close();
    }
  }

  private async exportFiles(
    paths: string[],
    format: CanonicalFormat,
    output: string | undefined,
    force: boolean,
  ): Promise<void> {
    const { report, loaded } = await validatePaths(paths);
    if (report.errors > 0 || report.warnings > 0) process.stderr.write(renderReport(report, 'text'));
    if (report.errors > 0) {
      process.exitCode = report.diagnostics.some(isInputProblem) ? 2 : 1;
      return;
    }
    const text = renderCanonical(
      loaded.map((l) => l.request),
      format,
    );
    await writeOutput(text, output, { force, overwriteHint: 'pass --force to overwrite it' });
  }
}
