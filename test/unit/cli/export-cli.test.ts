import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, expectGolden, runCli } from '../../support/cli.js';

const VALID = 'test/golden/fixtures/valid.yaml';
const INVALID = 'test/golden/fixtures/invalid.yaml';

const exportNs = (...args: string[]) => runCli(['namespace', 'export', ...args]);

let scratch: string;
beforeAll(async () => {
  await ensureBuilt();
  scratch = await mkdtemp(join(tmpdir(), 'prism-export-'));
}, 180_000);
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe.concurrent('namespace export', () => {
  it.each([
    ['yaml', 'export-valid.yaml'],
    ['json', 'export-valid.json'],
  ])('prints the canonical %s form exactly as the golden file', async (format, golden) => {
    const { stdout, stderr, code } = await exportNs('--file', VALID, '--format', format);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    await expectGolden(golden, stdout);
  });

  it.each(['yaml', 'json'])('gives the same %s bytes when run twice', async (format) => {
    const [first, second] = await Promise.all([
      exportNs('--file', 'examples/namespaces', '--format', format),
      exportNs('--file', 'examples/namespaces', '--format', format),
    ]);
    expect(first.code).toBe(0);
    expect(first.stdout.length).toBeGreaterThan(0);
    expect(second.stdout).toBe(first.stdout);
  });

  it.each(['yaml', 'json'])('gives the same %s bytes when exporting its own export', async (format) => {
    const first = await exportNs('--file', 'examples/namespaces', '--format', format);
    const file = join(scratch, `export.${format}`);
    await writeFile(file, first.stdout);
    const again = await exportNs('--file', file, '--format', format);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(first.stdout);
  });

  it('prints nothing and reports on stderr, exiting 1, for an invalid namespace', async () => {
    const { stdout, stderr, code } = await exportNs('--file', INVALID);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(`${INVALID}:3:7: error E_TEAM_NAME:`);
    expect(stderr).not.toContain('hunter2');
  });

  it('exits 2 for a missing file', async () => {
    const { stdout, stderr, code } = await exportNs('--file', 'does/not/exist.yaml');
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('E_FILE_NOT_FOUND');
  });

  it('exits 2 without --file', async () => {
    const { stderr, code } = await exportNs();
    expect(code).toBe(2);
    expect(stderr).not.toContain('    at ');
  });
});

describe.concurrent('namespace schema', () => {
  it('prints the committed JSON Schema', async () => {
    const { stdout, stderr, code } = await runCli(['namespace', 'schema']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toBe(await readFile('schema/namespace.schema.json', 'utf8'));
    expect(JSON.parse(stdout)).toMatchObject({ title: 'Prism namespace' });
  });
});
