import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validatePaths } from '../../../src/config/validate.js';
import { ensureBuilt, expectGolden, runCli } from '../../support/cli.js';

const INVALID = 'test/golden/fixtures/invalid.yaml';
const WARNINGS = 'test/golden/fixtures/warnings.yaml';
const VALID = 'examples/namespaces/orders-secure.yaml';
const SECRET = 'hunter2-golden-secret';
const STACK_FRAME = '    at ';

const validate = (...args: string[]) => runCli(['namespace', 'validate', ...args]);

let scratch: string;
beforeAll(async () => {
  await ensureBuilt();
  scratch = await mkdtemp(join(tmpdir(), 'prism-cli-'));
}, 180_000);
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe.concurrent('namespace validate: golden output', () => {
  it.each([
    ['text', 'validate-invalid.text.txt'],
    ['json', 'validate-invalid.json'],
    ['github', 'validate-invalid.github.txt'],
  ])(
    'prints the %s report of the invalid fixture exactly as the golden file, exiting 1',
    async (format, golden) => {
      const { stdout, stderr, code } = await validate(INVALID, '--format', format);
      expect(code).toBe(1);
      expect(stderr).toBe('');
      await expectGolden(golden, stdout);
      // The fixture holds a literal secret: it is reported, never echoed.
      expect(stdout).toContain('E_CREDENTIALS_LITERAL');
      expect(stdout).not.toContain(SECRET);
    },
  );

  it('prints the same JSON report as the validator run in-process', async () => {
    const { stdout } = await validate(INVALID, '--format', 'json');
    const { report } = await validatePaths([INVALID]);
    expect(JSON.parse(stdout)).toEqual(report);
  });

  it('prints the same bytes for --json as for --format json', async () => {
    const [json, format] = await Promise.all([
      validate(INVALID, '--json'),
      validate(INVALID, '--format', 'json'),
    ]);
    expect(json.stdout).toBe(format.stdout);
    expect(json.code).toBe(format.code);
  });
});

describe.concurrent('namespace validate: exit codes', () => {
  it('exits 0 for a valid namespace', async () => {
    expect(await validate(VALID)).toEqual({
      stdout: 'valid: 1 file, 1 namespace, 0 errors, 0 warnings\n',
      stderr: '',
      code: 0,
    });
  });

  it('exits 0 for the whole examples directory', async () => {
    const { stdout, code } = await validate('examples/namespaces');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^valid: \d+ files, \d+ namespaces, 0 errors, 0 warnings\n$/);
  });

  it('exits 0 with warnings', async () => {
    const { stdout, code } = await validate(WARNINGS);
    expect(code).toBe(0);
    expect(stdout).toBe(
      `${WARNINGS}:9:25: warning E_NEEDS_DURABILITY: needs.durability is strong but slot 'store' uses memstore, which loses data on restart\n` +
        '  hint: bind a durable backend or relax needs.durability\n' +
        'valid: 1 file, 1 namespace, 0 errors, 1 warning\n',
    );
  });

  it('exits 1 with warnings under --strict', async () => {
    const { stdout, code } = await validate(WARNINGS, '--strict');
    expect(code).toBe(1);
    expect(stdout.split('\n').at(-2)).toBe('invalid: 1 file, 1 namespace, 0 errors, 1 warning');
  });

  it('under --strict --format github, fails on warnings that stay ::warning annotations', async () => {
    const { stdout, stderr, code } = await validate(WARNINGS, '--strict', '--format', 'github');
    expect(code).toBe(1);
    expect(stderr).toBe('');
    expect(stdout).toBe(
      `::warning file=${WARNINGS},line=9,col=25,title=E_NEEDS_DURABILITY::needs.durability is strong but slot 'store' uses memstore, which loses data on restart (bind a durable backend or relax needs.durability)\n` +
        'invalid: 1 file, 1 namespace, 0 errors, 1 warning\n',
    );
  });

  it('exits 2 for a missing file, and still reports the files it could read', async () => {
    const { stdout, stderr, code } = await validate('does/not/exist.yaml', VALID);
    expect(code).toBe(2);
    expect(stderr).toBe('');
    expect(stdout).toBe(
      'does/not/exist.yaml: error E_FILE_NOT_FOUND: no such file or directory\n' +
        '  hint: check the path\n' +
        'invalid: 2 files, 1 namespace, 1 error, 0 warnings\n',
    );
  });

  it('exits 2 for a directory without namespace files', async () => {
    // Its own directory: the concurrent input tests write files into `scratch`.
    const empty = await mkdtemp(join(scratch, 'empty-'));
    const { stdout, code } = await validate(empty);
    expect(code).toBe(2);
    expect(stdout).toContain('error E_NO_FILES: directory holds no .yaml or .yml files');
  });

  it('exits 2 for an unknown flag, without a stack trace', async () => {
    const { stdout, stderr, code } = await validate(VALID, '--bogus');
    expect(code).toBe(2);
    expect(stderr).toContain('Nonexistent flag: --bogus');
    expect(stdout + stderr).not.toContain(STACK_FRAME);
  });

  it('exits 2 for an unknown format', async () => {
    const { stderr, code } = await validate(VALID, '--format', 'yaml');
    expect(code).toBe(2);
    expect(stderr).toContain('Expected --format=yaml to be one of: text, json, github');
  });

  it('exits 2 without a path', async () => {
    const { stderr, code } = await validate();
    expect(code).toBe(2);
    expect(stderr).toContain('Missing 1 required arg');
  });
});

describe.concurrent('namespace validate: input', () => {
  it('reads a namespace from stdin for "-"', async () => {
    const { stdout, code } = await runCli(['namespace', 'validate', '-'], {
      input:
        'namespace: orders\nteam: Commerce\npatterns: [{ name: cache, type: keyvalue, slots: { store: {} } }]\n',
    });
    expect(code).toBe(1);
    expect(stdout.split('\n')[0]).toBe("<stdin>:2:7: error E_TEAM_NAME: team 'Commerce' is not a valid name");
  });

  it('annotates GitHub with the file, line, column and rule', async () => {
    const { stdout } = await validate(WARNINGS, '--format', 'github');
    expect(stdout).toBe(
      `::warning file=${WARNINGS},line=9,col=25,title=E_NEEDS_DURABILITY::needs.durability is strong but slot 'store' uses memstore, which loses data on restart (bind a durable backend or relax needs.durability)\n` +
        'valid: 1 file, 1 namespace, 0 errors, 1 warning\n',
    );
  });

  const hostile: Array<[string, string | Buffer, string]> = [
    ['a binary file', Buffer.from([0x6e, 0x00, 0xff, 0x00]), 'E_NOT_TEXT'],
    ['a file that is not UTF-8', Buffer.from('namespace: caf\xe9\n', 'latin1'), 'E_ENCODING'],
    ['a YAML syntax error', 'namespace: [orders\nteam: commerce\n', 'E_YAML_SYNTAX'],
    [
      'an alias bomb',
      ['a: &a [x, x, x, x, x, x, x, x, x]']
        .concat(
          Array.from(
            { length: 8 },
            (_, i) =>
              `${'bcdefghi'[i]}: &${'bcdefghi'[i]} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(', ')}]`,
          ),
        )
        .join('\n'),
      'E_YAML_ALIAS',
    ],
    ['10,000 nested sequences', '['.repeat(10_000) + ']'.repeat(10_000), 'E_YAML_DEPTH'],
    ['an empty file', '', 'E_EMPTY_FILE'],
  ];

  it.each(hostile)('reports %s as a finding, without a stack trace', async (_what, content, rule) => {
    const file = join(scratch, `${rule}.yaml`);
    await writeFile(file, content);
    const { stdout, stderr, code } = await validate(file);
    expect(code).toBe(1);
    expect(stdout).toContain(` error ${rule}: `);
    expect(stderr).toBe('');
    expect(stdout + stderr).not.toContain(STACK_FRAME);
  });
});
