/**
 * Replays docs/getting-started.md: every fenced block marked `console replay`, command by command,
 * with a given prismctl (the checkout's, or one installed from the packed tarball) first on PATH,
 * in a temporary working directory and PRISM_HOME, and checks each command's exit code (0, or the
 * `# exits N` at the end of its line) and its output (stdout and stderr as one stream, as a
 * terminal shows them) against the lines the page prints below it.
 *
 * The page shows the default ports; here the stack runs on free ports so that it cannot collide
 * with anything else. That is the only change to the page's commands: `prismctl dev up` gets the
 * five port flags, the other commands get PRISM_PROXY_ENDPOINT (the flag's environment variable),
 * and in the output each free port is mapped back to its default. `dev up` then also prints the
 * hint `eval "$(prismctl dev env)"` for the moved ports, which is dropped before comparing.
 * Only process ids, timings and the prism home differ between runs; those are normalised on both
 * sides.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './cli.js';
import { freePort } from './ports.js';

interface Replay {
  command: string;
  exitCode: number;
  output: string[];
}

/** The commands of the page's `console replay` blocks, in order. */
function replays(markdown: string): Replay[] {
  const steps: Replay[] = [];
  for (const block of markdown.matchAll(/^```console replay\n([\s\S]*?)^```$/gm)) {
    for (const line of block[1]!.replace(/\n$/, '').split('\n')) {
      if (line.startsWith('$ ')) {
        const command = line.slice(2);
        const exits = /#\s*exits (\d+)\s*$/.exec(command);
        steps.push({ command, exitCode: exits ? Number(exits[1]) : 0, output: [] });
      } else {
        const last = steps.at(-1);
        if (!last) throw new Error(`output before any command in a replay block: ${line}`);
        last.output.push(line);
      }
    }
  }
  return steps;
}

const DEFAULT_PORTS = { admin: 8981, adminMetrics: 8982, proxy: 50090, proxyMetrics: 50091, idp: 5556 };
type PortName = keyof typeof DEFAULT_PORTS;

/** What changes from run to run: process ids and timings. */
function normalise(text: string): string {
  return text
    .replace(/\bpid \d+/g, 'pid <pid>')
    .replace(/\bin \d+\.\d s\b/g, 'in <t> s')
    .replace(/\bup \d+[smhd]\b/g, 'up <t>');
}

const page = readFileSync(join(REPO_ROOT, 'docs/getting-started.md'), 'utf8');
const steps = replays(page);

/**
 * Puts an executable `prismctl` into `bin` (the directory first on the replay's PATH); `root` is
 * the replay's scratch directory, removed afterwards.
 */
export type ProvidePrismctl = (bin: string, root: string) => Promise<void>;

/**
 * Defines the replay of docs/getting-started.md as a describe block named `title`, with the
 * prismctl that `provide` installs.
 */
export function describeGettingStartedReplay(
  title: string,
  provide: ProvidePrismctl,
  options: { setupTimeoutMs?: number } = {},
): void {
  describe(title, () => {
    const root = mkdtempSync(join(tmpdir(), 'prism-getting-started-'));
    const home = join(root, 'home');
    const work = join(root, 'work');
    const bin = join(root, 'bin');
    const ports = { ...DEFAULT_PORTS };
    let env: Record<string, string> = {};

    beforeAll(async () => {
      for (const dir of [home, work, bin]) mkdirSync(dir, { recursive: true });
      await provide(bin, root);
      for (const name of Object.keys(ports) as PortName[]) ports[name] = await freePort();
      env = {
        ...(process.env as Record<string, string>),
        PATH: [bin, process.env.PATH ?? ''].join(delimiter),
        PRISM_HOME: home,
        PRISM_PROXY_ENDPOINT: `127.0.0.1:${ports.proxy}`,
        // --embedded never asks for an engine; this keeps a stray engine out of it all the same.
        DOCKER_HOST: `unix://${join(root, 'no-docker.sock')}`,
        NO_COLOR: '1',
        FORCE_COLOR: '0',
      };
      delete env.PRISM_ADMIN_ENDPOINT;
      delete env.PRISM_TOKEN;
    }, options.setupTimeoutMs);

    afterAll(async () => {
      if (Object.keys(env).length > 0) await run('prismctl dev down');
      rmSync(root, { recursive: true, force: true });
    });

    /** One command in bash, from the working directory, stdout and stderr as one stream. */
    function run(command: string): Promise<{ code: number; output: string }> {
      return new Promise((resolve) => {
        execFile(
          'bash',
          ['--noprofile', '--norc', '-c', `exec 2>&1\n${command}`],
          { cwd: work, env, encoding: 'utf8', timeout: 60_000 },
          (error, stdout) =>
            resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, output: stdout }),
        );
      });
    }

    function withFreePorts(command: string): string {
      if (!/^prismctl dev up\b/.test(command)) return command;
      const flags = [
        ['--admin-port', ports.admin],
        ['--admin-metrics-port', ports.adminMetrics],
        ['--proxy-port', ports.proxy],
        ['--proxy-metrics-port', ports.proxyMetrics],
        ['--idp-port', ports.idp],
      ].flat();
      return `${command.replace(/\s*#.*$/, '')} ${flags.join(' ')}`;
    }

    function asOnThePage(output: string): string {
      let text = output.replace(/\n$/, '');
      for (const name of Object.keys(ports) as PortName[]) {
        text = text.replace(new RegExp(`\\b${ports[name]}\\b`, 'g'), String(DEFAULT_PORTS[name]));
      }
      text = text
        .split('\n')
        .filter((line) => line !== '  eval "$(prismctl dev env)"   # the ports are not the defaults')
        .join('\n');
      return normalise(text.split(home).join('~/.prism'));
    }

    it('has the steps a new user takes', () => {
      expect(steps.map((step) => step.command.replace(/\s*#.*$/, ''))).toEqual([
        'prismctl namespace init greetings --team web --pattern keyvalue --backend cache.store=sqlite -o greetings.yaml',
        'cat greetings.yaml',
        'prismctl namespace validate greetings.yaml',
        "sed 's/^namespace: greetings/namespace: Greetings/' greetings.yaml > broken.yaml",
        'prismctl namespace validate greetings.yaml broken.yaml',
        'prismctl namespace validate broken.yaml --format github',
        'prismctl dev up --embedded',
        'prismctl kv set -n playground greeting hello',
        'prismctl kv get -n playground greeting',
        'prismctl kv set -n playground greeting hello --ttl 30s',
        'prismctl kv get -n playground missing',
        'prismctl dev status',
        'prismctl dev down',
        'prismctl dev status',
      ]);
    });

    // One test per command, in the page's order: each builds on the state the one before left.
    for (const [index, step] of steps.entries()) {
      it(`${index + 1}. $ ${step.command}`, async () => {
        const { code, output } = await run(withFreePorts(step.command));
        expect(asOnThePage(output), `output of: ${step.command}`).toBe(normalise(step.output.join('\n')));
        expect(code, `exit code of: ${step.command}\n${output}`).toBe(step.exitCode);
      });
    }
  });
}
