import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../support/cli.js';

/**
 * The closing line of test/support/summary-reporter.ts, read from a real vitest run over small
 * test files written for the case: a file that never runs a test because it fails to load must
 * count as failed, not vanish from the line.
 */
const REPORTER = join(REPO_ROOT, 'test/support/summary-reporter.ts');
const VITEST = join(REPO_ROOT, 'node_modules/vitest/vitest.mjs');

const PASSING = "it('passes', () => {});\nit.skip('is skipped', () => {});\n";

/** Runs vitest (globals on, no config file) over `files` in a fresh folder; answers the summary line. */
function summaryOf(files: Record<string, string>): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'prism-summary-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, name), text);
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [VITEST, 'run', '--root', root, '--globals', '--reporter', REPORTER],
      { cwd: root, env: { ...process.env, CI: '1', NO_COLOR: '1' } },
      (_error, stdout, stderr) => {
        const line = /^tests: .*$/m.exec(stdout)?.[0];
        if (line) resolve(line);
        else reject(new Error(`no summary line in vitest's output:\n${stdout}\n${stderr}`));
      },
    );
  });
}

describe('the summary reporter', () => {
  it('counts passed and skipped tests of files that load', async () => {
    expect(await summaryOf({ 'ok.test.ts': PASSING })).toBe('tests: 1 passed, 0 failed, 1 skipped');
  });

  it('counts each file that fails to load as one failure: a syntax error, a throw, a missing import', async () => {
    const summary = await summaryOf({
      'ok.test.ts': PASSING,
      'syntax.test.ts': "it('never runs', () => { const = ; });\n",
      'throws.test.ts': "it('never runs', () => {});\nthrow new Error('thrown while loading');\n",
      'missing.test.ts': "import './not-there.js';\nit('never runs', () => {});\n",
    });
    expect(summary).toBe('tests: 1 passed, 3 failed, 1 skipped');
  });

  it('counts a suite whose beforeAll throws as one failure besides the tests it skipped', async () => {
    const summary = await summaryOf({
      'hook.test.ts': [
        "describe('a suite', () => {",
        "  beforeAll(() => { throw new Error('setup failed'); });",
        "  it('first', () => {});",
        "  it('second', () => {});",
        '});',
        '',
      ].join('\n'),
    });
    expect(summary).toBe('tests: 0 passed, 1 failed, 2 skipped');
  });
});
