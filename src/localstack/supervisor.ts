/**
 * Keeps the Docker stack's bundled servers (admin, proxy) running as child processes: each logs
 * to its own file, is restarted with backoff when it exits unexpectedly (at most `maxRestarts`
 * within a minute, then left down and logged), and is stopped with SIGTERM, then SIGKILL after
 * `stopTimeoutMs`, by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { probeHttp } from './health.js';
import { waitUntil } from './probes.js';

export interface ChildSpec {
  name: string;
  /** Arguments to `node`. */
  args: string[];
  env?: Record<string, string>;
  logFile: string;
  /** An HTTP URL that must answer 200 before this child first starts (e.g. the admin's /healthz). */
  after?: string;
  /** The CA an https:// `after` URL's certificate chains to. */
  afterCaFile?: string;
}

export interface SupervisorEvents {
  spawned(name: string, pid: number): void;
  exited(name: string, code: number | null, signal: string | null, restartInMs: number | undefined): void;
}

interface Running {
  spec: ChildSpec;
  child?: ChildProcess;
  restarts: number[];
  timer?: NodeJS.Timeout;
}

export class Supervisor {
  private readonly children = new Map<string, Running>();
  private stopping = false;

  constructor(
    private readonly events: SupervisorEvents,
    private readonly options: { maxRestarts?: number; stopTimeoutMs?: number } = {},
  ) {}

  /** Starts each child, in order, once its `after` URL answers (polled for up to a minute). */
  async start(specs: readonly ChildSpec[]): Promise<void> {
    for (const spec of specs) {
      const entry: Running = { spec, restarts: [] };
      this.children.set(spec.name, entry);
      if (spec.after) await waitForUrl(spec.after, 60_000, () => this.stopping, spec.afterCaFile);
      if (this.stopping) return;
      this.spawn(entry);
    }
  }

  pids(): Record<string, number | undefined> {
    return Object.fromEntries([...this.children].map(([name, r]) => [name, r.child?.pid]));
  }

  private spawn(entry: Running): void {
    const fd = openSync(entry.spec.logFile, 'a', 0o600);
    writeSync(
      fd,
      `${JSON.stringify({ time: Date.now(), msg: `supervisor: starting ${entry.spec.name}` })}\n`,
    );
    const child = spawn(process.execPath, entry.spec.args, {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...entry.spec.env },
    });
    closeSync(fd);
    entry.child = child;
    if (child.pid !== undefined) this.events.spawned(entry.spec.name, child.pid);
    child.once('exit', (code, signal) => {
      entry.child = undefined;
      if (this.stopping) return;
      const now = Date.now();
      entry.restarts = entry.restarts.filter((t) => now - t < 60_000);
      const max = this.options.maxRestarts ?? 5;
      const delay = entry.restarts.length >= max ? undefined : 500 * 2 ** entry.restarts.length;
      this.events.exited(entry.spec.name, code, signal, delay);
      if (delay === undefined) return;
      entry.restarts.push(now);
      entry.timer = setTimeout(() => this.spawn(entry), delay);
    });
  }

  /** Stops every child, in reverse start order; resolves when all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const entry of [...this.children.values()].reverse()) {
      clearTimeout(entry.timer);
      const child = entry.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs ?? 10_000);
      await exited;
      clearTimeout(timer);
    }
  }
}

function waitForUrl(
  url: string,
  timeoutMs: number,
  cancelled: () => boolean,
  caFile: string | undefined,
): Promise<unknown> {
  return waitUntil(
    () => probeHttp(url, 500, 200, caFile),
    Date.now() + timeoutMs,
    async () => (cancelled() ? 'stopping' : undefined),
    100,
  );
}
