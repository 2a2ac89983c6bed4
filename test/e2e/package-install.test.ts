/**
 * The package as users get it: `npm pack` of this checkout, installed the two ways users install
 * it, with nothing but the npm registry for its dependencies:
 *   - `npm install -g` into a clean prefix, whose `prismctl` then replays docs/getting-started.md
 *     (init, validate, `dev up --embedded`, kv set/get, status, down);
 *   - a dependency of a fresh project, run with `npx prismctl`.
 * Plain `npm install`, as docs/getting-started.md says: npm 11 runs no dependency install script
 * unless allowed, and nothing prismctl needs has one (better-sqlite3 13 ships prebuilt binaries;
 * the scripts npm skips are dockerode's optional native speed-ups).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBuilt, REPO_ROOT } from '../support/cli.js';
import { describeGettingStartedReplay } from '../support/getting-started-replay.js';

const INSTALL_TIMEOUT_MS = 10 * 60_000;

interface PackedFile {
  path: string;
}

function sh(
  command: string,
  args: string[],
  cwd: string,
  timeout = INSTALL_TIMEOUT_MS,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        cwd,
        encoding: 'utf8',
        timeout,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, NO_COLOR: '1' },
      },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
        else resolve({ stdout, stderr });
      },
    );
  });
}

const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
};
const npmInstallFlags = ['--no-audit', '--no-fund', '--prefer-offline'];

let packedFiles: string[] = [];
// Outside the replay's scratch directory, which the replay removes when it ends.
const projectDir = mkdtempSync(join(tmpdir(), 'prism-uses-prismctl-'));
afterAll(() => rmSync(projectDir, { recursive: true, force: true }));

/** Packs the checkout, then installs the tarball globally into a clean prefix and into a project. */
async function packAndInstall(bin: string, root: string): Promise<void> {
  await ensureBuilt();
  const { stdout } = await sh(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', root],
    REPO_ROOT,
  );
  const [packed] = JSON.parse(stdout) as [{ filename: string; files: PackedFile[] }];
  packedFiles = packed.files.map((file) => file.path).sort();
  const tarball = join(root, packed.filename);

  const prefix = join(root, 'prefix');
  writeFileSync(join(projectDir, 'package.json'), JSON.stringify({ name: 'uses-prismctl', private: true }));
  await Promise.all([
    sh('npm', ['install', '--global', '--prefix', prefix, ...npmInstallFlags, tarball], root),
    sh('npm', ['install', ...npmInstallFlags, tarball], projectDir),
  ]);
  symlinkSync(join(prefix, 'bin', 'prismctl'), join(bin, 'prismctl'));
}

describeGettingStartedReplay(
  'prismctl installed globally from the packed tarball replays docs/getting-started.md',
  packAndInstall,
  { setupTimeoutMs: INSTALL_TIMEOUT_MS },
);

describe('the packed tarball', () => {
  it('holds only what runs: the built code, the SDK types, schema, protos, templates and examples', () => {
    const allowed =
      /^(bin\/run\.js|dist\/.+\.(c?js|d\.ts)$|dist\/fast\/commands\.json$|schema\/|proto\/|templates\/|examples\/|oclif\.manifest\.json$|package\.json$|README\.md$)/;
    expect(packedFiles.filter((path) => !allowed.test(path))).toEqual([]);
    expect(packedFiles).toEqual(
      expect.arrayContaining([
        'bin/run.js',
        'dist/commands/namespace/validate.js',
        'dist/fast/main.js',
        'dist/fast/commands/namespace/validate.js',
        'dist/fast/commands.json',
        'dist/sdk/index.js',
        'dist/sdk/index.d.ts',
        'templates/pattern/src/index.ts',
        'oclif.manifest.json',
        'schema/namespace.schema.json',
        'templates/dev/components.yaml',
      ]),
    );
  });
});

describe('npx prismctl in a project that depends on the package', () => {
  it('runs the installed version', async () => {
    const { stdout } = await sh('npx', ['--no-install', 'prismctl', '--version'], projectDir, 60_000);
    expect(stdout).toMatch(new RegExp(`^prismctl/${manifest.version.replace(/\./g, '\\.')} `));
  });

  it('imports the Pattern SDK as prismctl/sdk', async () => {
    const { stdout } = await sh(
      'node',
      [
        '--input-type=module',
        '-e',
        "const sdk = await import('prismctl/sdk'); console.log(sdk.SDK_VERSION, typeof sdk.definePattern, typeof sdk.keyValueRunnerConformance)",
      ],
      projectDir,
      60_000,
    );
    expect(stdout.trim()).toBe('1.1.0 function function');
  });

  it('validates the examples shipped in the package', async () => {
    const examples = join(projectDir, 'node_modules/prismctl/examples/namespaces');
    const { stdout } = await sh(
      'npx',
      ['--no-install', 'prismctl', 'namespace', 'validate', examples, '--json'],
      projectDir,
      60_000,
    );
    expect(JSON.parse(stdout)).toMatchObject({ valid: true, files: 8, namespaces: 8, errors: 0 });
  });
});
