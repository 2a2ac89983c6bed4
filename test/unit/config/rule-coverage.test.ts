import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Every rule id the validator can emit is asserted by some test in this directory. Adding a rule
 * without a test fails here.
 */

/** The modules that produce diagnostics (not PrismErrors). */
const VALIDATION_MODULES = [
  'sources.ts',
  'yaml-loader.ts',
  'structural.ts',
  'schema-diagnostics.ts',
  'config-file.ts',
  'rules.ts',
  'validate.ts',
  'diagnostics.ts',
  'policies.ts',
];

/** Defensive fallbacks that the generated schema keeps out of reach. */
const UNREACHABLE = new Set(['E_SCHEMA']);

describe('rule coverage', () => {
  it('has a test asserting every rule id the validator can emit', async () => {
    const sources = await Promise.all(VALIDATION_MODULES.map((m) => readFile(join('src/config', m), 'utf8')));
    const ids = [...new Set(sources.join('\n').match(/'E_[A-Z_]+'/g))].sort();
    const testFiles = (await readdir('test/unit/config')).filter(
      (n) => n.endsWith('.test.ts') && !n.startsWith('rule-coverage'),
    );
    const tests = (
      await Promise.all(testFiles.map((n) => readFile(join('test/unit/config', n), 'utf8')))
    ).join('\n');
    expect(ids.length).toBeGreaterThanOrEqual(45);
    expect(ids.filter((id) => !UNREACHABLE.has(id.slice(1, -1)) && !tests.includes(id))).toEqual([]);
  });
});
