import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';

export interface RunningAdmin {
  /** host:port of the gRPC server. */
  endpoint: string;
  httpPort: number;
  prismHome: string;
  logs: () => string;
  /** Sends SIGTERM and waits for the exit code. */
  stop: () => Promise<number | null>;
}

/** Starts a real `prismctl admin serve` on free loopback ports and waits until it serves. */
export async function startAdmin(
  options: { store?: string; extraArgs?: string[] } = {},
): Promise<RunningAdmin> {
  const prismHome = mkdtempSync(join(tmpdir(), 'prism-admin-home-'));
  const args = [
    join(REPO_ROOT, 'bin/run.js'),
    'admin',
    'serve',
    '--listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
  ];
  if (options.store) args.push('--store', options.store);
  args.push(...(options.extraArgs ?? []));
  const child: ChildProcess = spawn(process.execPath, args, {
    env: { ...process.env, PRISM_HOME: prismHome },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const ready = await new Promise<{ port: number; httpPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`admin did not start within 20 s:\n${output}`)), 20_000);
    const check = () => {
      for (const line of output.split('\n')) {
        if (!line.includes('prism admin serving')) continue;
        const entry = JSON.parse(line) as { port: number; httpPort: number };
        clearTimeout(timer);
        resolve(entry);
        return;
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`admin exited with ${code} before serving:\n${output}`));
    });
  });
  return {
    endpoint: `127.0.0.1:${ready.port}`,
    httpPort: ready.httpPort,
    prismHome,
    logs: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
