import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { patternModuleFlag } from '../../cli/pattern-module-flag.js';
import { loadPatternModules } from '../../config/external-patterns.js';
import { tuneJitForShortRun } from '../../cli/short-run-jit.js';
import { isInputProblem } from '../../config/diagnostics.js';
import { renderReport, type ReportFormat } from '../../config/report-format.js';
import { validatePaths, type ValidationReport } from '../../config/validate.js';

export default class NamespaceValidate extends BaseCommand {
  static override summary = 'Validate namespace files (a CI gate)';
  static override description = `Checks YAML syntax, the schema, names, patterns, slots, backends, settings, sessions, credentials and auth, and reports every problem at once with file, line and column.
Exit codes: 0 valid (warnings allowed unless --strict), 1 errors found (or warnings under --strict), 2 usage error or unreadable input.
Under --strict, warnings are still reported as warnings (::warning with --format github); only the exit code and the summary's valid/invalid change.`;
  static override examples = [
    '<%= config.bin %> namespace validate namespaces/',
    '<%= config.bin %> namespace validate orders.yaml --format github',
    'cat orders.yaml | <%= config.bin %> namespace validate - --json',
  ];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = {
    paths: Args.string({
      description: 'Files, directories (searched for *.yaml, *.yml) or - for stdin',
      required: true,
    }),
  };
  static override flags = {
    format: Flags.string({
      description: 'Output format (--json is the same as --format json)',
      options: ['text', 'json', 'github'],
      default: 'text',
    }),
    strict: Flags.boolean({
      description: 'Fail (exit 1) when there are warnings; they are still reported as warnings',
    }),
    ...patternModuleFlag,
  };

  async run(): Promise<ValidationReport> {
    const { argv, flags } = await this.parse(NamespaceValidate);
    tuneJitForShortRun();
    if (flags['pattern-module']) await loadPatternModules(flags['pattern-module']);
    const { report } = await validatePaths(argv as string[], { strict: flags.strict });
    process.exitCode = report.diagnostics.some(isInputProblem) ? 2 : report.valid ? 0 : 1;
    if (!this.jsonEnabled()) this.write(renderReport(report, flags.format as ReportFormat));
    return report;
  }
}
