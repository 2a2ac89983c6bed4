/**
 * The proxy's launcher: runner processes for patterns with `isolation: namespace | pattern`.
 * The proxy decides which processes run (from the namespaces it serves); each process is shared
 * by the remote runners routed to it and stops when the last lets go (the namespace table stops
 * runners of a namespace that is removed or replaced). Every process listens on a Unix socket in
 * a 0700 directory of its own, so only this user reaches it.
 */
import { patternModules } from '../../config/external-patterns.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { RunnerAssignmentSchema } from '../../gen/prism/config/v1/runner_assignment_pb.js';
import type { ServedNamespace } from '../served-namespace.js';
import { RunnerProcess, type RunnerProcessInfo } from './runner-process.js';

export interface LauncherOptions {
  logger: Logger;
  /** --max-old-space-size of every runner process, MiB (proxy serve --runner-max-old-space). */
  maxOldSpaceMb?: number | undefined;
  /** V8 options of every runner process, as the proxy's own (proxy serve --v8-flags). */
  v8Flags?: readonly string[];
  /** Directory of file-backed stores (sqlite), the same as the proxy's in-process runners use. */
  dataDir?: string | undefined;
  /** Log level of the runner processes (they log to the proxy's stdout/stderr). */
  logLevel?: string | undefined;
  /** Node and prismctl's bin/run.js (default: this Node and this package's bin/run.js). */
  command?: { node: string; script: string };
  backoffMs?: number;
  maxBackoffMs?: number;
  startTimeoutMs?: number;
}

interface Entry {
  process: RunnerProcess;
  holders: number;
  starting?: Promise<void>;
}

export class Launcher {
  private readonly processes = new Map<string, Entry>();
  private socketDir: string | undefined;
  private sequence = 0;
  private closed = false;

  constructor(private readonly options: LauncherOptions) {}

  /**
   * Takes a share of the process serving `patterns` of `served` (launching it for the first
   * holder) and resolves once it serves. `key` names the process: the namespace, its assignment
   * version and its isolation group.
   */
  async acquire(
    key: string,
    served: ServedNamespace,
    patterns: string[],
    isolation: 'namespace' | 'pattern',
  ): Promise<RunnerProcess> {
    if (this.closed) throw new Error('the launcher is stopped');
    let entry = this.processes.get(key);
    if (!entry) {
      const process = new RunnerProcess({
        command: this.options.command ?? defaultCommand(),
        socketPath: join(this.dir(), `${++this.sequence}.sock`),
        assignment: create(RunnerAssignmentSchema, {
          namespace: served.namespace,
          assignment: served.assignment,
          patterns,
        }),
        isolation,
        maxOldSpaceMb: this.options.maxOldSpaceMb,
        v8Flags: this.options.v8Flags,
        flags: [
          ...(served.namespace.auth?.enabled ? ['--no-auth'] : []),
          ...(this.options.logLevel ? ['--log-level', this.options.logLevel] : []),
          ...(this.options.dataDir ? ['--data-dir', this.options.dataDir] : []),
          // Pattern modules this proxy loaded (docs/sdk.md): the child needs their runner factories.
          ...patternModules().flatMap((module) => ['--pattern-module', module]),
        ],
        logger: this.options.logger,
        ...(this.options.backoffMs !== undefined ? { backoffMs: this.options.backoffMs } : {}),
        ...(this.options.maxBackoffMs !== undefined ? { maxBackoffMs: this.options.maxBackoffMs } : {}),
        ...(this.options.startTimeoutMs !== undefined ? { startTimeoutMs: this.options.startTimeoutMs } : {}),
      });
      entry = { process, holders: 0 };
      entry.starting = process.start();
      this.processes.set(key, entry);
    }
    entry.holders++;
    try {
      await entry.starting;
    } catch (err) {
      await this.release(key);
      throw err;
    }
    return entry.process;
  }

  /** Gives a share back; the last one stops the process. */
  async release(key: string): Promise<void> {
    const entry = this.processes.get(key);
    if (!entry) return;
    entry.holders--;
    if (entry.holders > 0) return;
    this.processes.delete(key);
    await entry.process.stop();
  }

  list(): RunnerProcessInfo[] {
    return [...this.processes.values()]
      .map((e) => e.process.info())
      .sort((a, b) =>
        `${a.namespace}/${a.patterns.join()}`.localeCompare(`${b.namespace}/${b.patterns.join()}`),
      );
  }

  /** Stops every runner process (proxy drain and shutdown). */
  async stop(): Promise<void> {
    this.closed = true;
    const all = [...this.processes.values()];
    this.processes.clear();
    await Promise.all(all.map((e) => e.process.stop()));
    if (this.socketDir) rmSync(this.socketDir, { recursive: true, force: true });
  }

  /** prism_runner_process_* gauges, one series per process. */
  register(registry: Registry): void {
    const labelNames = ['namespace', 'patterns', 'isolation'] as const;
    const each = (
      gauge: Gauge<(typeof labelNames)[number]>,
      value: (i: RunnerProcessInfo) => number | null,
    ) => {
      gauge.reset();
      for (const info of this.list()) {
        const v = value(info);
        if (v !== null)
          gauge.set(
            { namespace: info.namespace, patterns: info.patterns.join(','), isolation: info.isolation },
            v,
          );
      }
    };
    const up: Gauge<(typeof labelNames)[number]> = new Gauge({
      name: 'prism_runner_process_up',
      help: 'A launched runner process serves (1) or is starting, restarting or stopped (0)',
      labelNames,
      registers: [registry],
      collect: () => each(up, (i) => (i.state === 'serving' ? 1 : 0)),
    });
    const restarts: Gauge<(typeof labelNames)[number]> = new Gauge({
      name: 'prism_runner_process_restarts',
      help: 'Times the launcher restarted a runner process after it exited',
      labelNames,
      registers: [registry],
      collect: () => each(restarts, (i) => i.restarts),
    });
    const rss: Gauge<(typeof labelNames)[number]> = new Gauge({
      name: 'prism_runner_process_resident_memory_bytes',
      help: 'Resident memory of a launched runner process',
      labelNames,
      registers: [registry],
      collect: () => each(rss, (i) => i.rssBytes),
    });
  }

  private dir(): string {
    // Short (Unix socket paths are limited to ~107 bytes) and private (mkdtemp makes it 0700).
    this.socketDir ??= mkdtempSync(join(tmpdir(), 'prism-runners-'));
    return this.socketDir;
  }
}

/** This Node, and the bin/run.js of the package this module belongs to. */
function defaultCommand(): { node: string; script: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'bin', 'run.js')) || !existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find prismctl bin/run.js above the launcher module');
    dir = up;
  }
  return { node: process.execPath, script: join(dir, 'bin', 'run.js') };
}
