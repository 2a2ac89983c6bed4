import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { checkPolicyCases, type CheckReport } from '../../auth/policy/check-cases.js';

export default class PolicyCheck extends BaseCommand {
  static override summary = 'Run a directory of expected policy decisions (a CI gate)';
  static override description = `Each *.yaml case file names a namespace file (relative to itself) and cases with the decision they expect (docs/policies.md §10). Exit codes: 0 every case passed, 1 a decision differed (or a namespace is invalid), 2 a case file is malformed.`;
  static override examples = ['<%= config.bin %> policy check policies/tests/'];
  static override enableJsonFlag = true;
  static override args = {
    dir: Args.string({ description: 'Directory of case files (or one case file)', required: true }),
  };

  async run(): Promise<CheckReport> {
    const { args } = await this.parse(PolicyCheck);
    const report = await checkPolicyCases(args.dir);
    if (report.failed > 0) process.exitCode = 1;
    if (!this.jsonEnabled()) {
      for (const r of report.results) {
        const where = `${r.file}:${r.line}`;
        if (r.pass) this.write(`PASS ${where} ${r.name}\n`);
        else
          this.write(
            `FAIL ${where} ${r.name}: expected ${r.expected}${r.expectedPolicies ? ` by ${r.expectedPolicies.join(', ') || 'no policy'}` : ''}, got ${r.actual}${r.policies.length ? ` by ${r.policies.join(', ')}` : ''}\n`,
          );
      }
      this.write(`${report.passed} passed, ${report.failed} failed\n`);
    }
    return report;
  }
}
