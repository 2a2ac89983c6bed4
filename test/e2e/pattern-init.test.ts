/**
 * docs/sdk.md's walkthrough, replayed: `prismctl pattern init` writes a package from
 * templates/pattern/ that type-checks and builds against the SDK's published types, passes the
 * SDK's conformance suite with its own test, and whose built module `namespace validate
 * --pattern-module` accepts. The package's `prismctl` dependency is this checkout (a symlink, as
 * `npm link` makes), so no registry is involved.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, REPO_ROOT, runCli } from '../support/cli.js';

const work = mkdtempSync(join(tmpdir(), 'prism-pattern-init-'));
const pkg = join(work, 'quota');

function node(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error.code as number) ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

describe('prismctl pattern init and the walkthrough of docs/sdk.md', () => {
  beforeAll(ensureBuilt);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('writes the package from templates/pattern with the name and type filled in', async () => {
    const out = await runCli(['pattern', 'init', '@acme/prism-quota', '--dir', 'quota', '--json'], {
      cwd: work,
    });
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({
      dir: pkg,
      type: 'quota',
      files: ['README.md', 'package.json', 'src/index.ts', 'test/conformance.test.ts', 'tsconfig.json'],
    });
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as {
      name: string;
      peerDependencies: Record<string, string>;
    };
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    expect([manifest.name, manifest.peerDependencies.prismctl]).toEqual(['@acme/prism-quota', `^${version}`]);
    const source = readFileSync(join(pkg, 'src/index.ts'), 'utf8');
    expect(source).toContain("type: 'quota',");
    expect(source.match(/from '([^']+)'/g)).toEqual(["from 'prismctl/sdk'"]);
  });

  it('refuses to write into a directory that is not empty', async () => {
    const out = await runCli(['pattern', 'init', 'quota'], { cwd: work });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`${pkg} exists and is not empty; nothing was written`);
  });

  it('builds against the SDK types and passes the SDK conformance suite with its own test', async () => {
    mkdirSync(join(pkg, 'node_modules'));
    symlinkSync(REPO_ROOT, join(pkg, 'node_modules', 'prismctl'));
    for (const dep of ['vitest', 'typescript', '@types'])
      symlinkSync(join(REPO_ROOT, 'node_modules', dep), join(pkg, 'node_modules', dep));
    const built = await node([join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.'], pkg);
    expect([built.code, built.out]).toEqual([0, '']);
    const tested = await node([join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'), 'run'], pkg);
    expect(tested.out).toContain('Tests  5 passed (5)');
    expect(tested.code).toBe(0);
  });

  it('is a pattern type for namespace validate once its module is given', async () => {
    writeFileSync(
      join(work, 'orders.yaml'),
      'namespace: orders\nteam: commerce\npatterns:\n  - { name: cache, type: quota, slots: { store: { backend: redis } }, settings: { custom: { key_prefix: orders/ } } }\n',
    );
    const out = await runCli(
      ['namespace', 'validate', 'orders.yaml', '--pattern-module', './quota/dist/index.js', '--json'],
      { cwd: work },
    );
    expect([out.code, JSON.parse(out.stdout).valid]).toEqual([0, true]);
  });
});
