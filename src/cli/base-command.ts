import { Command, Flags, type Interfaces } from '@oclif/core';
import type { Diagnostic } from '../config/diagnostics.js';
import { renderReport, textLine } from '../config/report-format.js';
import type { ValidationReport } from '../config/validate.js';
import { isPrismError, type PrismErrorCode } from '../errors.js';
import { EXIT_CODES } from './exit-codes.js';

/**
 * Shared flags and error handling of every prismctl command. Errors print one line and a hint;
 * stack traces only with --debug.
 */
export abstract class BaseCommand extends Command {
  static override baseFlags = {
    debug: Flags.boolean({ description: 'Print stack traces on errors', helpGroup: 'GLOBAL' }),
  };

  protected override async catch(err: Interfaces.CommandError): Promise<never> {
    const debug = this.argv.includes('--debug');
    if (isPrismError(err)) {
      // Validation failures carry their findings: show them before the one-line summary.
      const { report, diagnostics } = err as { report?: ValidationReport; diagnostics?: Diagnostic[] };
      if (report) process.stderr.write(renderReport(report, 'text'));
      else if (diagnostics) process.stderr.write(diagnostics.map(textLine).join(''));
      this.logToStderr(`error ${err.code}: ${err.message}`);
      if (err.hint) this.logToStderr(`  hint: ${err.hint}`);
      if (debug && err.stack) this.logToStderr(err.stack);
      return this.exit(this.exitCodeFor(err.code));
    }
    const oclifExit = (err as { oclif?: { exit?: number } }).oclif?.exit;
    if (oclifExit !== undefined) {
      // oclif's own errors: flag parsing (usage, exit 2) and this.exit().
      if (debug && err.stack) this.logToStderr(err.stack);
      throw err;
    }
    this.logToStderr(`error: ${err.message}`);
    if (debug && err.stack) this.logToStderr(err.stack);
    else this.logToStderr('  hint: run again with --debug for details');
    return this.exit(1);
  }

  /** Exit code of a failed run; commands with their own convention (diff: 2 = error) override it. */
  protected exitCodeFor(code: PrismErrorCode): number {
    return EXIT_CODES[code];
  }

  /** Writes text exactly as given (no added newline) to stdout. */
  protected write(text: string): void {
    process.stdout.write(text);
  }
}
