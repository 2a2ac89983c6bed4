import { describe, expect, it } from 'vitest';
import { checkPolicyCases } from '../../../../src/auth/policy/check-cases.js';
import { validatePaths } from '../../../../src/config/validate.js';

describe('examples/policies', () => {
  it('validates, policy files included', async () => {
    const { report, loaded } = await validatePaths(['examples/policies/reports.yaml']);
    expect(report.diagnostics).toEqual([]);
    expect(loaded[0]?.request.access?.policies.map((p) => p.file)).toEqual([
      'policies/working-hours.cedar',
      'policies/guards.cedar',
    ]);
  });

  it('decides every expected case of examples/policies/tests as written', async () => {
    const report = await checkPolicyCases('examples/policies/tests');
    expect(report.results.filter((r) => !r.pass)).toEqual([]);
    expect(report.passed).toBe(8);
  });
});
