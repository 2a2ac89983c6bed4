/**
 * The GitHub Action in action.yml, run locally step by step the way the runner runs a composite
 * action: each `run:` step is written to a file and run with `bash --noprofile --norc -eo pipefail`
 * (GitHub's command for `shell: bash`) from GITHUB_WORKSPACE, with `${{ inputs.<id> }}` replaced by
 * the input's value or default. Composite steps get no INPUT_* variables (actions/runner#665), so
 * none are set here. Lines a step appends to $GITHUB_PATH are put before PATH for the steps after it.
 *
 * The install step is pointed at this checkout (`source`), so npm links the built package (dist/
 * from `npm run build`) into a prefix under RUNNER_TEMP without using the network. It runs once; each
 * scenario then runs the steps after it, as a job that installed prismctl would.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ensureBuilt, GOLDEN_DIR, REPO_ROOT } from '../support/cli.js';

interface ActionInput {
  description: string;
  required?: boolean;
  default?: string;
}

interface ActionStep {
  id?: string;
  name?: string;
  shell?: string;
  run?: string;
  uses?: string;
  env?: Record<string, string>;
  'working-directory'?: string;
}

interface Action {
  inputs: Record<string, ActionInput>;
  runs: { using: string; steps: ActionStep[] };
}

interface StepResult {
  id: string;
  stdout: string;
  stderr: string;
  code: number;
}

const action = parse(readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8')) as Action;

/** `${{ inputs.<id> }}` becomes the input's value; any other expression is not supported here. */
function substitute(text: string, inputs: Record<string, string>): string {
  return text.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, (_match, expression: string) => {
    const input = /^inputs\.([A-Za-z0-9_-]+)$/.exec(expression);
    if (!input) throw new Error(`action.yml uses \${{ ${expression} }}, which this test cannot evaluate`);
    const name = input[1]!;
    if (!(name in action.inputs)) throw new Error(`action.yml uses undeclared input '${name}'`);
    return inputs[name] ?? action.inputs[name]!.default ?? '';
  });
}

/** A job's state between steps: the runner's files and the PATH entries steps added. */
class Job {
  readonly temp = mkdtempSync(join(tmpdir(), 'prism-action-'));
  readonly addedPaths: string[] = [];
  private steps = 0;

  /** Runs the action's steps from the one with id `from` to the end; stops at the first that fails. */
  async run(with_: Record<string, string>, from?: string): Promise<StepResult[]> {
    const all = action.runs.steps;
    const start = from === undefined ? 0 : all.findIndex((step) => step.id === from);
    if (start < 0) throw new Error(`action.yml has no step with id '${from}'`);
    const results: StepResult[] = [];
    for (const step of all.slice(start)) {
      const result = await this.step(step, with_);
      results.push(result);
      if (result.code !== 0) break;
    }
    return results;
  }

  private async step(step: ActionStep, inputs: Record<string, string>): Promise<StepResult> {
    if (step.uses !== undefined || step.run === undefined)
      throw new Error(`step ${step.id} is not a run step`);
    if (step.shell !== 'bash') throw new Error(`step ${step.id} must set shell: bash`);
    const n = ++this.steps;
    const script = join(this.temp, `step-${n}.sh`);
    writeFileSync(script, substitute(step.run, inputs));
    const githubPath = join(this.temp, `path-${n}`);
    writeFileSync(githubPath, '');
    const stepEnv: Record<string, string> = {};
    for (const [key, value] of Object.entries(step.env ?? {}))
      stepEnv[key] = substitute(String(value), inputs);
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: REPO_ROOT,
      GITHUB_ACTION_PATH: REPO_ROOT,
      GITHUB_PATH: githubPath,
      GITHUB_ENV: join(this.temp, `env-${n}`),
      GITHUB_OUTPUT: join(this.temp, `output-${n}`),
      GITHUB_STEP_SUMMARY: join(this.temp, `summary-${n}`),
      RUNNER_TEMP: join(this.temp, 'runner-temp'),
      PATH: [...this.addedPaths, process.env.PATH ?? ''].join(delimiter),
      NO_COLOR: '1',
      ...stepEnv,
    };
    for (const key of Object.keys(env)) if (key.startsWith('INPUT_')) delete env[key];
    const cwd = step['working-directory']
      ? join(REPO_ROOT, substitute(step['working-directory'], inputs))
      : REPO_ROOT;
    const result = await new Promise<StepResult>((resolve) => {
      execFile(
        'bash',
        ['--noprofile', '--norc', '-eo', 'pipefail', script],
        { cwd, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
        (error, stdout, stderr) =>
          resolve({
            id: step.id ?? `step ${n}`,
            stdout,
            stderr,
            code: error ? (typeof error.code === 'number' ? error.code : -1) : 0,
          }),
      );
    });
    const added = readFileSync(githubPath, 'utf8').split('\n').filter(Boolean);
    this.addedPaths.unshift(...added.reverse());
    return result;
  }
}

describe('action.yml: the namespace-validate GitHub Action', () => {
  const job = new Job();

  beforeAll(async () => {
    await ensureBuilt();
    const [install] = await job.run({ paths: 'examples/namespaces', source: '.' }, 'install');
    expect(install?.stderr).toBe('');
    expect(install?.code).toBe(0);
    expect(install?.stdout).toMatch(/^prismctl\/\d+\.\d+\.\d+ /m);
  }, 300_000);

  afterAll(() => {
    rmSync(job.temp, { recursive: true, force: true });
  });

  it('is a composite action whose steps are bash run steps reading inputs through ${{ inputs }}', () => {
    expect(action.runs.using).toBe('composite');
    expect(action.runs.steps.map((step) => step.id)).toEqual(['install', 'validate']);
    expect(Object.keys(action.inputs)).toEqual(['paths', 'version', 'source', 'strict', 'working-directory']);
    expect(action.inputs.paths?.required).toBe(true);
    for (const step of action.runs.steps) expect(step.run).not.toMatch(/\$\{\{/);
  });

  it('installs prismctl into RUNNER_TEMP and puts it on the PATH of the steps after it', () => {
    expect(job.addedPaths).toEqual([join(job.temp, 'runner-temp/prismctl/bin')]);
  });

  it('annotates every finding of an invalid file, exactly as the golden github report, and fails', async () => {
    const [validate] = await job.run({ paths: 'test/golden/fixtures/invalid.yaml' }, 'validate');
    expect(validate?.code).toBe(1);
    expect(validate?.stderr).toBe('');
    expect(validate?.stdout).toBe(readFileSync(join(GOLDEN_DIR, 'validate-invalid.github.txt'), 'utf8'));
    expect(validate?.stdout.split('\n').slice(0, 2)).toEqual([
      "::error file=test/golden/fixtures/invalid.yaml,line=3,col=7,title=E_TEAM_NAME::team 'Commerce' is not a valid name (use 2-63 characters: lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen)",
      "::error file=test/golden/fixtures/invalid.yaml,line=4,col=1,title=E_SCHEMA_UNKNOWN_KEY::unknown key 'descripton' in the namespace (did you mean 'description'?)",
    ]);
  });

  it('passes the example namespaces and the valid fixture without an annotation', async () => {
    const [validate] = await job.run(
      { paths: 'examples/namespaces\n  test/golden/fixtures/valid.yaml\n' },
      'validate',
    );
    expect(validate?.code).toBe(0);
    expect(validate?.stdout).toMatch(/^valid: \d+ files, \d+ namespaces, 0 errors, 0 warnings\n$/);
  });

  const WARNING =
    "::warning file=test/golden/fixtures/warnings.yaml,line=9,col=25,title=E_NEEDS_DURABILITY::needs.durability is strong but slot 'store' uses memstore, which loses data on restart (bind a durable backend or relax needs.durability)";

  it('annotates a warning and passes, unless strict is true', async () => {
    const [lenient] = await job.run({ paths: 'test/golden/fixtures/warnings.yaml' }, 'validate');
    expect(lenient).toMatchObject({
      code: 0,
      stdout: `${WARNING}\nvalid: 1 file, 1 namespace, 0 errors, 1 warning\n`,
    });
    const [strict] = await job.run(
      { paths: 'test/golden/fixtures/warnings.yaml', strict: 'true' },
      'validate',
    );
    expect(strict).toMatchObject({
      code: 1,
      stdout: `${WARNING}\ninvalid: 1 file, 1 namespace, 0 errors, 1 warning\n`,
    });
  });

  it('takes paths relative to working-directory and still names files from the repository root', async () => {
    const [validate] = await job.run(
      { paths: './fixtures/warnings.yaml', 'working-directory': './test/golden/' },
      'validate',
    );
    expect(validate).toMatchObject({
      code: 0,
      stdout: `${WARNING}\nvalid: 1 file, 1 namespace, 0 errors, 1 warning\n`,
    });
  });

  it('annotates a path that does not exist and exits 2', async () => {
    const [validate] = await job.run({ paths: 'test/golden/fixtures/valid.yaml missing.yaml' }, 'validate');
    expect(validate?.code).toBe(2);
    expect(validate?.stdout).toBe(
      '::error file=missing.yaml,title=E_FILE_NOT_FOUND::no such file or directory (check the path)\n' +
        'invalid: 2 files, 1 namespace, 1 error, 0 warnings\n',
    );
  });

  it('refuses a strict value other than true or false, and empty paths, with an annotation', async () => {
    const [strict] = await job.run({ paths: 'examples/namespaces', strict: 'yes' }, 'validate');
    expect(strict).toMatchObject({
      code: 2,
      stdout: "::error title=prismctl::input strict must be true or false, found 'yes'\n",
    });
    const [empty] = await job.run({ paths: ' \n' }, 'validate');
    expect(empty).toMatchObject({
      code: 2,
      stdout: '::error title=prismctl::input paths is empty; name namespace files or directories\n',
    });
  });
});
