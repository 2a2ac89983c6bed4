/**
 * One launched runner process and its supervision: spawn `prismctl runner serve --assignment-stdin`
 * with the assignment on standard input (kept open as the child's lifeline), wait for its
 * "serving" line on fd 3, restart it with exponential backoff when it exits, and stop it with
 * SIGTERM (SIGKILL after a grace period). The protocol is in
 * proto/prism/config/v1/runner_assignment.proto and docs/architecture.md.
 */
import { toJsonString } from '@bufbuild/protobuf';
import { makeGenericClientConstructor, credentials, type Client } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { KeyValue } from '../../gen/prism/data/v1/keyvalue_pb.js';
import { Consumer, Producer } from '../../gen/prism/data/v1/messaging_pb.js';
import {
  RunnerAssignmentSchema,
  type RunnerAssignment,
} from '../../gen/prism/config/v1/runner_assignment_pb.js';
import { PrismError } from '../../errors.js';
import { grpcServiceDefinition } from '../../transport/service-definition.js';
import { CLIENT_OPTIONS } from '../../transport/limits.js';
import type { RunnerClients, RunnerProcessHandle } from '../remote-runner.js';
import { GrpcHttp2Channel } from '../../client/grpc-http2.js';
import { CallStreamChannel } from '../../client/call-stream.js';

const KeyValueClient = makeGenericClientConstructor(grpcServiceDefinition(KeyValue), 'KeyValue');
const ProducerClient = makeGenericClientConstructor(grpcServiceDefinition(Producer), 'Producer');
const ConsumerClient = makeGenericClientConstructor(grpcServiceDefinition(Consumer), 'Consumer');
const HealthClient = makeGenericClientConstructor(healthService as never, 'Health');

export type RunnerState = 'starting' | 'serving' | 'backoff' | 'stopping' | 'stopped' | 'failed';

export interface RunnerProcessInfo {
  namespace: string;
  /** The patterns this process serves (one with isolation pattern; several with namespace). */
  patterns: string[];
  isolation: 'namespace' | 'pattern';
  pid: number | null;
  state: RunnerState;
  restarts: number;
  /** Resident set size, bytes (from /proc; null when not running). */
  rssBytes: number | null;
  /** The V8 heap limit the process reported when it started serving (the memory cap at work). */
  heapLimitBytes: number | null;
  /** The --max-old-space-size given to the process, MiB (null: V8's default). */
  maxOldSpaceMb: number | null;
}

export interface RunnerProcessOptions {
  /** The command that runs prismctl: [node, ...flags-before-memory-cap, bin/run.js]. */
  command: { node: string; script: string };
  socketPath: string;
  assignment: RunnerAssignment;
  isolation: 'namespace' | 'pattern';
  maxOldSpaceMb?: number | undefined;
  /** V8 options of the process (proxy serve --v8-flags), before the memory cap. */
  v8Flags?: readonly string[];
  /** Extra `runner serve` flags (e.g. --no-auth, --log-level). */
  flags?: string[];
  logger: Logger;
  /** First restart delay; doubles up to maxBackoffMs; reset after a process served for 30 s. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A process not serving within this is killed and counted as a failed start. */
  startTimeoutMs?: number;
  onChange?: () => void;
}

export class RunnerProcess implements RunnerProcessHandle {
  state: RunnerState = 'stopped';
  restarts = 0;
  private child: ChildProcess | undefined;
  private clientSet: (RunnerClients & { all: Client[] }) | undefined;
  private heapLimitBytes: number | null = null;
  private backoffTimer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private exited: Promise<void> = Promise.resolve();
  /** When the current process last started serving (0: never served). */
  private servedSince = 0;

  constructor(private readonly options: RunnerProcessOptions) {
    this.delayMs = options.backoffMs ?? 200;
  }

  get label(): string {
    const { assignment } = this.options;
    return `${assignment.namespace?.namespace}/${assignment.patterns.join('+')}`;
  }

  /** Launches the process; resolves once it serves, rejects when its first start fails. */
  async start(): Promise<void> {
    this.launch();
    await this.serving();
  }

  clients(): RunnerClients {
    if (this.state !== 'serving' || !this.clientSet) {
      throw new PrismError('E_UNAVAILABLE', `the runner process of ${this.label} is ${this.state}`, {
        hint: 'the proxy restarts it; retry shortly',
      });
    }
    return this.clientSet;
  }

  serving(): Promise<void> {
    if (this.state === 'serving') return Promise.resolve();
    if (this.state === 'stopped' || this.state === 'stopping' || this.state === 'failed')
      return Promise.reject(
        new PrismError('E_UNAVAILABLE', `the runner process of ${this.label} is ${this.state}`),
      );
    return new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  info(): RunnerProcessInfo {
    const pid = this.child?.pid ?? null;
    return {
      namespace: this.options.assignment.namespace?.namespace ?? '',
      patterns: [...this.options.assignment.patterns],
      isolation: this.options.isolation,
      pid: this.child && this.child.exitCode === null && this.child.signalCode === null ? pid : null,
      state: this.state,
      restarts: this.restarts,
      rssBytes: pid !== null && this.state !== 'stopped' ? rssOf(pid) : null,
      heapLimitBytes: this.state === 'serving' ? this.heapLimitBytes : null,
      maxOldSpaceMb: this.options.maxOldSpaceMb ?? null,
    };
  }

  /** Stops the process (SIGTERM, then SIGKILL after `graceMs`) and restarts it no more. */
  async stop(graceMs = 5000): Promise<void> {
    clearTimeout(this.backoffTimer);
    const child = this.child;
    this.setState('stopping');
    this.rejectWaiters(new PrismError('E_UNAVAILABLE', `the runner process of ${this.label} was stopped`));
    this.closeClients();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(killer);
    }
    this.setState('stopped');
  }

  private launch(): void {
    const { options } = this;
    const args = [
      ...(options.v8Flags ?? []),
      ...(options.maxOldSpaceMb !== undefined ? [`--max-old-space-size=${options.maxOldSpaceMb}`] : []),
      options.command.script,
      'runner',
      'serve',
      '--assignment-stdin',
      '--listen',
      `unix:${options.socketPath}`,
      '--status-fd',
      '3',
      ...(options.flags ?? []),
    ];
    this.setState('starting');
    const child = spawn(options.command.node, args, {
      stdio: ['pipe', 'inherit', 'inherit', 'pipe'],
      env: process.env,
    });
    this.child = child;
    let exited!: () => void;
    this.exited = new Promise<void>((resolve) => (exited = resolve));
    // The child's lifeline: never ended by us; it closes when this process exits, however it dies.
    child.stdin!.on('error', () => undefined);
    child.stdin!.write(`${toJsonString(RunnerAssignmentSchema, options.assignment)}\n`);
    const startTimer = setTimeout(() => {
      options.logger.warn(
        { runner: this.label, pid: child.pid },
        'runner process did not start serving in time',
      );
      child.kill('SIGKILL');
    }, options.startTimeoutMs ?? 30_000);
    const status = createInterface({ input: child.stdio[3] as Readable });
    status.on('line', (line) => {
      try {
        const report = JSON.parse(line) as { serving?: boolean; heapLimitBytes?: number };
        if (!report.serving || this.child !== child) return;
        clearTimeout(startTimer);
        this.heapLimitBytes = report.heapLimitBytes ?? null;
        this.openClients();
        this.servedSince = Date.now();
        this.setState('serving');
        options.logger.info(
          { runner: this.label, pid: child.pid, restarts: this.restarts },
          'runner process serving',
        );
        this.waiters.splice(0).forEach((w) => w.resolve());
      } catch {
        options.logger.warn({ runner: this.label }, 'runner process wrote an unreadable status line');
      }
    });
    child.on('error', (err) =>
      options.logger.error({ runner: this.label, err: err.message }, 'cannot run runner process'),
    );
    child.on('exit', (code, signal) => {
      clearTimeout(startTimer);
      status.close();
      exited();
      if (this.child !== child) return;
      this.closeClients();
      if (this.state === 'stopping' || this.state === 'stopped') return;
      const wasServing = this.state === 'serving';
      options.logger.warn({ runner: this.label, pid: child.pid, code, signal }, 'runner process exited');
      if (!wasServing && this.restarts === 0 && this.servedSince === 0) {
        // The first start failed (bad assignment, backend down at start): the proxy reports it
        // as it would an in-process runner that cannot start, and does not loop on it.
        this.setState('failed');
        this.rejectWaiters(
          new PrismError(
            'E_UNAVAILABLE',
            `the runner process of ${this.label} exited before serving (code ${code ?? signal})`,
          ),
        );
        return;
      }
      this.scheduleRestart(wasServing);
    });
  }

  private scheduleRestart(wasServing: boolean): void {
    const max = this.options.maxBackoffMs ?? 10_000;
    if (wasServing && Date.now() - this.servedSince > 30_000) this.delayMs = this.options.backoffMs ?? 200;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, max);
    this.setState('backoff');
    this.backoffTimer = setTimeout(() => {
      this.restarts++;
      this.launch();
    }, delay);
  }

  private openClients(): void {
    this.closeClients();
    const target = `unix:${this.options.socketPath}`;
    const insecure = credentials.createInsecure();
    const keyValue = new KeyValueClient(target, insecure, CLIENT_OPTIONS);
    const producer = new ProducerClient(target, insecure, CLIENT_OPTIONS);
    const consumer = new ConsumerClient(target, insecure, CLIENT_OPTIONS);
    const health = new HealthClient(target, insecure, CLIENT_OPTIONS);
    const unary = new CallStreamChannel(GrpcHttp2Channel.to({ socketPath: this.options.socketPath }));
    this.clientSet = {
      unary,
      keyValue: keyValue as never,
      producer: producer as never,
      consumer: consumer as never,
      health: health as never,
      all: [keyValue, producer, consumer, health],
    };
  }

  private closeClients(): void {
    this.clientSet?.all.forEach((c) => c.close());
    this.clientSet?.unary.close();
    this.clientSet = undefined;
  }

  private rejectWaiters(err: Error): void {
    this.waiters.splice(0).forEach((w) => w.reject(err));
  }

  private setState(state: RunnerState): void {
    this.state = state;
    this.options.onChange?.();
  }
}

/** VmRSS of a process, bytes; null when it cannot be read. */
function rssOf(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}
