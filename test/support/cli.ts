/**
 * Runs the built prismctl CLI (`node bin/run.js ...`) as a child process from the repository root,
 * the way a user or a CI step runs it, and compares output with golden files.
 *
 *   const { stdout, stderr, code } = await runCli(['namespace', 'validate', 'orders.yaml']);
 *   await expectGolden('validate-invalid.text.txt', stdout);   // UPDATE_GOLDEN=1 rewrites it
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const GOLDEN_DIR = join(REPO_ROOT, 'test/golden');

export interface CliResult {
  stdout: string;
  stderr: string;
  /** Process exit code. */
  code: number;
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed (it is closed empty otherwise). */
  input?: string | Buffer;
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      process.execPath,
      [join(REPO_ROOT, 'bin/run.js'), ...args],
      {
        cwd: options.cwd ?? REPO_ROOT,
        env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...options.env },
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: options.timeoutMs ?? 30_000,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(new Error(`prismctl ${args.join(' ')} did not exit normally: ${error.message}\n${stderr}`));
          return;
        }
        resolvePromise({ stdout, stderr, code: error ? (error.code as number) : 0 });
      },
    );
    child.stdin?.end(options.input ?? '');
  });
}

/** Builds dist/ with `npm run build` when it is missing (`npm test` builds before vitest runs). */
export async function ensureBuilt(): Promise<void> {
  if (existsSync(join(REPO_ROOT, 'dist/commands/namespace/validate.js'))) return;
  await new Promise<void>((resolvePromise, reject) => {
    execFile(
      'npm',
      ['run', 'build'],
      { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 },
      (error, _out, stderr) =>
        error ? reject(new Error(`npm run build failed: ${stderr}`)) : resolvePromise(),
    );
  });
}

/** Compares `actual` byte for byte with test/golden/<name>; with UPDATE_GOLDEN=1, rewrites the file. */
export async function expectGolden(name: string, actual: string): Promise<void> {
  const file = join(GOLDEN_DIR, name);
  if (process.env.UPDATE_GOLDEN === '1') {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, actual);
    return;
  }
  let expected: string;
  try {
    expected = await readFile(file, 'utf8');
  } catch {
    throw new Error(`golden file ${name} is missing; run the tests with UPDATE_GOLDEN=1 to create it`);
  }
  expect(actual, `output differs from test/golden/${name} (UPDATE_GOLDEN=1 rewrites it)`).toBe(expected);
}
