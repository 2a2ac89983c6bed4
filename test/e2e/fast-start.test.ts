import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, REPO_ROOT, runCli, type CliResult } from '../support/cli.js';

// bin/run.js runs most command lines without oclif (src/cli/lite/run.ts) and hands the rest to
// oclif. Whichever path a line takes, the person sees the same thing: these lines run both ways
// (PRISMCTL_FAST_START=0 forces oclif) and must print the same bytes with the same exit code.
const loadLog = pathToFileURL(join(REPO_ROOT, 'test/support/oclif-load-log.mjs')).href;
const OCLIF = '[oclif]\n';

async function bothWays(args: string[], env: Record<string, string> = {}) {
  const run = (fast: boolean) =>
    runCli(args, {
      env: { NODE_OPTIONS: `--import ${loadLog}`, PRISMCTL_FAST_START: fast ? '1' : '0', ...env },
    });
  const [fast, oclif] = await Promise.all([run(true), run(false)]);
  const tookOclif = (r: CliResult) => r.stderr.includes(OCLIF);
  // Stack traces (--debug) name the bundle's files, which differ between the two paths.
  const strip = (r: CliResult) => ({
    ...r,
    stderr: r.stderr.replace(OCLIF, '').replace(/dist\/(fast\/)?chunks\/chunk-\w+\.js:\d+:\d+/g, '<bundle>'),
  });
  expect(tookOclif(oclif)).toBe(true);
  return { fast: strip(fast), oclif: strip(oclif), fastLoadedOclif: tookOclif(fast) };
}

let dir: string;
let valid: string;
let invalid: string;
beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'prism-fast-start-'));
  valid = join(dir, 'valid.yaml');
  writeFileSync(valid, 'namespace: orders\nteam: payments\npatterns:\n  - name: cache\n    type: keyvalue\n');
  invalid = join(dir, 'invalid.yaml');
  writeFileSync(
    invalid,
    'namespace: orders\nteam: payments\npatterns:\n  - name: cache\n    type: keyvalu\n',
  );
});

describe('a command line the fast path runs', () => {
  const lines: [string, () => string[], Record<string, string>?][] = [
    ['validate, text', () => ['namespace', 'validate', valid]],
    ['validate, --json', () => ['namespace', 'validate', valid, '--json']],
    ['validate, --format=github, invalid file', () => ['namespace', 'validate', '--format=github', invalid]],
    ['validate, two paths and --strict', () => ['namespace', 'validate', valid, invalid, '--strict']],
    ['validate, a missing file', () => ['namespace', 'validate', join(dir, 'missing.yaml')]],
    ['export as JSON', () => ['namespace', 'export', valid, '--format', 'json']],
    [
      'kv get with -n and an unreachable proxy',
      () => ['kv', 'get', 'k', '-n', 'orders', '--proxy', '127.0.0.1:9'],
    ],
    [
      'kv get, the proxy from the environment, --json',
      () => ['kv', 'get', 'k', '-n', 'orders', '--json'],
      { PRISM_PROXY_ENDPOINT: '127.0.0.1:9' },
    ],
    [
      'kv scan with an integer flag',
      () => ['kv', 'scan', 'a/', '-n', 'orders', '--limit', '5', '--proxy', '127.0.0.1:9'],
    ],
    ['namespace list with --debug', () => ['namespace', 'list', '--admin', '127.0.0.1:9', '--debug']],
  ];
  it.each(lines)('%s: same output and exit code, without loading oclif', async (_, args, env) => {
    const { fast, oclif, fastLoadedOclif } = await bothWays(args(), env);
    expect(fast).toEqual(oclif);
    expect(fastLoadedOclif).toBe(false);
  });
});

describe('a command line only oclif answers', () => {
  const lines: [string, () => string[]][] = [
    ['an unknown flag', () => ['namespace', 'validate', valid, '--bogus']],
    ['a missing argument', () => ['namespace', 'validate']],
    ['a value outside the options', () => ['namespace', 'validate', valid, '--format', 'xml']],
    ['an integer below its minimum', () => ['kv', 'scan', '-n', 'orders', '--limit', '0']],
    ['a flag given twice', () => ['kv', 'get', 'k', '-n', 'a', '-n', 'b']],
    ['a missing required flag', () => ['kv', 'get', 'k']],
    ['--help', () => ['kv', 'get', '--help']],
    ['a topic', () => ['namespace']],
    ['an unknown command', () => ['namespace', 'valdate', valid]],
  ];
  it.each(lines)('%s: oclif reports it, as without the fast path', async (_, args) => {
    const { fast, oclif, fastLoadedOclif } = await bothWays(args());
    expect(fast).toEqual(oclif);
    expect(fastLoadedOclif).toBe(true);
  });
});
