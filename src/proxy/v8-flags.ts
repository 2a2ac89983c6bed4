/**
 * `proxy serve --v8-flags`: the V8 options every process that serves calls runs with (Node's
 * `--v8-pool-size`, the number of V8's background threads, is taken too). V8 reads its heap sizes
 * and Node its pool size once, when the process starts, so they cannot be set from inside a running
 * proxy: cluster workers get them on their command line, and a single-process proxy
 * (`--workers 1`) replaces itself once, before it opens anything, with the same command line plus
 * the flags (`process.execve`: same pid, same stdio).
 *
 * The default was chosen by measurement:
 * - `--max-semi-space-size=8` (bench/proxy/README.md, "Young generation"): a unary call allocates
 *   ≈ 40 KB across grpc-js, node:http2 and ioredis, and at 1,000 calls/s about a quarter of it
 *   survives a scavenge whatever the young generation's size, so a scavenge's pause grows with that
 *   size. V8's default here (64 MiB semi-spaces: Node runs without pointer compression) gave
 *   scavenges of 20–40 ms (median) and ≈ 300 MiB RSS per worker under load; 8 MiB gave 6–7 ms and
 *   ≈ 90 MiB less, at the same CPU per call. Smaller sizes shortened the pauses further (4 MiB:
 *   3–5 ms) but cost CPU per call under saturation (4 MiB: ≈ +25 %, 1 MiB: +50–70 %), when every
 *   scavenge copies the calls in flight.
 * - `--v8-pool-size=1` (bench/RESULTS.md, session 20): one background thread for V8's garbage
 *   collector and compilers instead of Node's four. A collection's parallel phases wait for every
 *   helper that took a share of the work; with a worker per core, four helpers each, Redis and the
 *   clients on the same cores, a preempted helper held the pause. At 1,000 calls/s the p99.9 added
 *   over Redis fell from 8–12 to 3–6 ms, at the same CPU per call and throughput, for 30–40
 *   MiB more RSS per worker.
 */
import cluster from 'node:cluster';
import { UsageError } from '../errors.js';

export const DEFAULT_V8_FLAGS = '--max-semi-space-size=8 --v8-pool-size=1';

const FLAG = /^--[a-z][a-z0-9_-]*(=[^\s=][^\s]*)?$/i;

/** The flags of `--v8-flags`: words of the form --name or --name=value; '' for none. */
export function parseV8Flags(text: string): string[] {
  const flags = text.split(/\s+/).filter(Boolean);
  const bad = flags.find((flag) => !FLAG.test(flag));
  if (bad !== undefined)
    throw new UsageError(
      `--v8-flags: '${bad}' is not a V8 option (--name or --name=value)`,
      `for example --v8-flags '${DEFAULT_V8_FLAGS}', or --v8-flags '' for V8's defaults`,
    );
  return flags;
}

/** True when this process was started with every one of `flags` on its command line. */
export function runsWith(flags: readonly string[]): boolean {
  return flags.every((flag) => process.execArgv.includes(flag));
}

/**
 * Cluster workers forked from here on start with `flags` after the primary's own options, and with
 * `env` (malloc-tunables.ts) in their environment, as every process they launch.
 */
export function forkWorkersWith(flags: readonly string[], env: Record<string, string> = {}): void {
  if (flags.length > 0) cluster.setupPrimary({ execArgv: [...process.execArgv, ...flags] });
  Object.assign(process.env, env);
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/** Set for the replacement process only: a second replacement would loop. */
const RESTARTED = 'PRISM_PROXY_V8_RESTARTED';

/**
 * Makes this process run with `flags` and started with `env` (malloc-tunables.ts): returns
 * 'running' when it already does (or there are none); otherwise replaces the process with one that
 * does and never returns, or returns 'unsupported' where the runtime cannot replace a process
 * (Windows, Node < 22.15).
 */
export function restartWith(
  flags: readonly string[],
  env: Record<string, string> = {},
): 'running' | 'unsupported' {
  const restarted = process.env[RESTARTED] !== undefined;
  delete process.env[RESTARTED];
  const started = Object.entries(env).every(([name, value]) => process.env[name] === value);
  if ((runsWith(flags) && started) || restarted) return 'running';
  const execve = (process as unknown as { execve?: Execve }).execve;
  if (typeof execve !== 'function') return 'unsupported';
  return execve(
    process.execPath,
    [
      process.execPath,
      ...process.execArgv,
      ...flags.filter((f) => !process.execArgv.includes(f)),
      ...process.argv.slice(1),
    ],
    { ...process.env, ...env, [RESTARTED]: '1' },
  );
}
