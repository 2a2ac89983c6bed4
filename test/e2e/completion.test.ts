/**
 * Shell completion as a user gets it: the script `prismctl completion <shell>` prints, loaded into
 * a real bash, zsh and fish, completing a real command line with the built prismctl on PATH, and
 * namespace names read from a real control plane.
 *
 * bash: the completion function is called the way bash calls it (COMP_WORDS, COMP_CWORD) and
 * COMPREPLY is printed. fish: `complete -C '<line>'`, fish's own "what would you offer here".
 * zsh: completion functions only run inside the line editor, so `_describe` and `_files` (the zsh
 * builtins the script hands its answer to) are replaced by functions printing what they receive.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { ensureBuilt, REPO_ROOT, runCli } from '../support/cli.js';
import { toYaml, validNamespace } from '../support/factories.js';
import { describeIfPresent } from '../support/services.js';

const root = mkdtempSync(join(tmpdir(), 'prism-completion-'));
const bin = join(root, 'bin');
let admin: RunningAdmin;
let env: Record<string, string> = {};

function shell(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function which(program: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', `command -v ${program}`], (error) => resolve(!error));
  });
}

beforeAll(async () => {
  await ensureBuilt();
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'prismctl'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO_ROOT, 'bin/run.js'))} "$@"\n`,
  );
  chmodSync(join(bin, 'prismctl'), 0o755);
  admin = await startAdmin();
  for (const name of ['orders', 'billing']) {
    const file = join(root, `${name}.yaml`);
    writeFileSync(file, toYaml(validNamespace({ namespace: name })));
    const applied = await runCli(['namespace', 'apply', file, '--admin', admin.endpoint]);
    expect(applied.code, applied.stderr).toBe(0);
  }
  env = {
    ...(process.env as Record<string, string>),
    PATH: [bin, process.env.PATH ?? ''].join(delimiter),
    PRISM_ADMIN_ENDPOINT: admin.endpoint,
    HOME: root,
  };
  delete env.PRISM_TOKEN;
}, 60_000);

afterAll(async () => {
  await admin?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('prismctl complete (the answer every shell script asks for)', () => {
  async function complete(...words: string[]): Promise<string[]> {
    const result = await runCli(['complete', '--', ...words], { env });
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.split('\n').filter(Boolean);
  }

  it('offers the topics and commands at the top level, with their summaries', async () => {
    expect(await complete('na')).toEqual([
      'namespace\tValidate, scaffold, apply and export namespace declarations',
    ]);
    expect(await complete('namespace', 'va')).toEqual(['validate\tValidate namespace files (a CI gate)']);
  });

  it("offers a command's flags", async () => {
    expect(await complete('kv', 'get', '--na')).toEqual(['--namespace\tNamespace']);
  });

  it("offers a flag's allowed values", async () => {
    expect(await complete('dev', 'up', '--network', '')).toEqual(['bridge', 'host']);
  });

  it('offers namespace names from the control plane for -n and for namespace get', async () => {
    expect(await complete('kv', 'get', '-n', '')).toEqual(['billing', 'orders']);
    expect(await complete('namespace', 'get', 'or')).toEqual(['orders']);
    expect(await complete('namespace', 'history', '--admin', admin.endpoint, '')).toEqual([
      'billing',
      'orders',
    ]);
  });

  it('offers no names, quickly and without an error, when no control plane answers', async () => {
    const started = Date.now();
    expect(await complete('kv', 'get', '--admin', '127.0.0.1:9', '-n', '')).toEqual([]);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('asks for file names where a command takes files', async () => {
    expect(await complete('namespace', 'validate', '')).toEqual([':files']);
  });
});

describe('the bash script', () => {
  async function bashComplete(line: string): Promise<string[]> {
    const words = line.split(' ');
    const script = [
      'source <(prismctl completion bash)',
      `COMP_WORDS=(prismctl ${words.map((word) => `'${word}'`).join(' ')})`,
      `COMP_CWORD=${words.length}`,
      '_prismctl_complete',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    return (await shell('bash', ['--noprofile', '--norc', '-c', script])).split('\n').filter(Boolean);
  }

  it('completes commands, flags and namespace names', async () => {
    expect(await bashComplete('namespace va')).toEqual(['validate']);
    expect(await bashComplete('kv get --na')).toEqual(['--namespace']);
    expect(await bashComplete('kv get -n ')).toEqual(['billing', 'orders']);
  });
});

const zsh = await which('zsh');
describeIfPresent(
  'zsh',
  zsh
    ? { ok: true }
    : { ok: false, reason: 'zsh is not installed (scripts/test-services.sh up installs it)' },
  'the zsh script',
  () => {
    async function zshComplete(line: string): Promise<string> {
      const words = line.split(' ');
      const script = [
        '_describe() { shift; print -l -- "${(@P)1}"; }',
        '_files() { print -- FILES; }',
        'source <(prismctl completion zsh)',
        `words=(prismctl ${words.map((word) => `'${word}'`).join(' ')})`,
        `CURRENT=${words.length + 1}`,
        '_prismctl',
      ].join('\n');
      return shell('zsh', ['-f', '-c', script]);
    }

    it('hands commands with descriptions, namespace names and file names to zsh', async () => {
      expect(await zshComplete('namespace va')).toBe('validate:Validate namespace files (a CI gate)\n');
      expect(await zshComplete('kv get -n ')).toBe('billing\norders\n');
      expect(await zshComplete('namespace validate ')).toBe('FILES\n');
    });
  },
);

const fish = await which('fish');
describeIfPresent(
  'fish',
  fish
    ? { ok: true }
    : { ok: false, reason: 'fish is not installed (scripts/test-services.sh up installs it)' },
  'the fish script',
  () => {
    async function fishComplete(line: string): Promise<string> {
      return shell('fish', ['--no-config', '-c', `prismctl completion fish | source; complete -C '${line}'`]);
    }

    it('completes commands with descriptions and namespace names', async () => {
      expect(await fishComplete('prismctl namespace va')).toBe(
        'validate\tValidate namespace files (a CI gate)\n',
      );
      expect(await fishComplete('prismctl kv get -n ')).toBe('billing\norders\n');
    });
  },
);
