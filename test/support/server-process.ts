import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { servedNamespaces } from '../../src/localstack/up-readiness.js';
import { REPO_ROOT } from './cli.js';

export interface RunningServer {
  /** Fields of the "... serving" log line (port, httpPort, ...). */
  ready: Record<string, unknown>;
  prismHome: string;
  pid: number;
  logs: () => string;
  /** Sends a signal (default SIGTERM) and waits for the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/**
 * Starts a real prismctl server process (`admin serve`, `proxy serve`, `runner serve`) and waits
 * for its pino "serving" line, whose fields tell the bound ports.
 */
export async function startPrismServer(
  args: string[],
  readyMessage: string,
  env: Record<string, string> = {},
): Promise<RunningServer> {
  const prismHome = env.PRISM_HOME ?? mkdtempSync(join(tmpdir(), 'prism-home-'));
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/run.js'), ...args], {
    env: { ...process.env, PRISM_HOME: prismHome, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A child that never became ready would outlive the test that gave up on it.
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not start within 30 s:\n${output}`));
    }, 30_000);
    const check = () => {
      const line = output.split('\n').find((l) => l.includes(`"msg":"${readyMessage}"`));
      if (!line) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as Record<string, unknown>);
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code} before serving:\n${output}`));
    });
  });
  return {
    ready,
    prismHome,
    pid: child.pid!,
    logs: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** `proxy serve` arguments for a proxy on loopback with ephemeral data and metrics ports. */
export function proxyServeArgs(config: { namespaces: string; backends?: string }): string[] {
  return [
    ...['proxy', 'serve', '--namespaces', config.namespaces],
    ...(config.backends ? ['--backends', config.backends] : []),
    ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
  ];
}

/** Starts `proxy serve` with proxyServeArgs and `extraArgs`, and waits until it serves. */
export function startProxy(
  config: { namespaces: string; backends?: string },
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<RunningServer> {
  return startPrismServer([...proxyServeArgs(config), ...extraArgs], 'prism proxy serving', env);
}

/**
 * Waits until a proxy's /metrics list every one of `names` as served (a namespace whose backend
 * failed it at start is tried again with backoff); fails with the proxy's error lines otherwise.
 */
export async function waitUntilServed(
  proxy: RunningServer,
  names: readonly string[],
  timeoutMs = 60_000,
): Promise<void> {
  const url = `http://127.0.0.1:${proxy.ready.httpPort as number}/metrics`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const served = servedNamespaces(await (await fetch(url)).text());
    const missing = names.filter((name) => !served.has(name));
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      const errors = proxy
        .logs()
        .split('\n')
        .filter((line) => /"level":(50|60)/.test(line));
      throw new Error(
        `the proxy does not serve ${missing.join(', ')} after ${timeoutMs} ms:\n${errors.join('\n')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
