import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Pattern modules (examples/patterns/) import the SDK by its package name (docs/sdk.md).
  resolve: { alias: { 'prismctl/sdk': new URL('./src/sdk/index.ts', import.meta.url).pathname } },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
