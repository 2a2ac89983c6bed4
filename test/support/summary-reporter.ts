import type { Reporter, SerializedError, TestModule } from 'vitest/node';

export interface RunCounts {
  passed: number;
  failed: number;
  skipped: number;
}

/**
 * Counts a run: every test by its state, plus one failure for each file or suite that failed
 * outside its tests and for each unhandled error. A file that fails to load (syntax error,
 * top-level throw, missing import) has no tests at all, and a suite whose beforeAll throws marks
 * its tests skipped; both would otherwise read as a clean run.
 */
export function countRun(
  testModules: ReadonlyArray<TestModule>,
  unhandledErrors: ReadonlyArray<SerializedError> = [],
): RunCounts {
  const counts: RunCounts = { passed: 0, failed: unhandledErrors.length, skipped: 0 };
  for (const mod of testModules) {
    for (const container of [mod, ...mod.children.allSuites()]) {
      if (container.errors().length > 0) counts.failed++;
    }
    for (const test of mod.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') counts.passed++;
      else if (state === 'failed') counts.failed++;
      else counts.skipped++;
    }
  }
  return counts;
}

/**
 * Prints one plain closing line, "N passed, N failed, N skipped", so that CI tooling that does not
 * parse vitest's own summary still reads the outcome.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError> = [],
  ): void {
    const { passed, failed, skipped } = countRun(testModules, unhandledErrors);
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
