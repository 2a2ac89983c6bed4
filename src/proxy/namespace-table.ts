import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { NamespaceRequest, NamespaceResponse } from '../gen/prism/config/v1/namespace_pb.js';
import { PrismError } from '../errors.js';
import { metadataValue, NAMESPACE_HEADER, PATTERN_HEADER } from '../transport/metadata.js';
import { createRunner, type CreateRunnerOptions } from '../runners/create-runner.js';
import type { CallerSessionStore, Runner } from '../runners/types.js';
import type { ServedNamespace } from './served-namespace.js';
import { servedApi } from '../config/external-patterns.js';

/** Builds (but does not start) the runner of one pattern of a namespace. */
export type RunnerFactory = (
  ns: NamespaceRequest,
  assignment: NamespaceResponse,
  patternName: string,
) => Promise<Runner>;

/** Runners in this process, built by createRunner from the namespace's assignment. */
export function inProcessRunners(options: CreateRunnerOptions): RunnerFactory {
  return async (ns, assignment, patternName) => {
    const pattern = assignment.patterns.find((p) => p.name === patternName);
    if (!pattern) {
      throw new PrismError(
        'E_NOT_FOUND',
        `namespace '${ns.namespace}' has no assigned pattern '${patternName}'`,
      );
    }
    return createRunner(ns, patternName, pattern, options);
  };
}

interface Entry {
  served: ServedNamespace;
  version: bigint;
  runners: Runner[];
}

/** A wanted namespace (or version of one) whose runners failed to start, and its next attempt. */
interface Failing {
  served: ServedNamespace;
  attempts: number;
  retryAt: number;
  timer: NodeJS.Timeout;
}

/** Backoff between attempts to start a namespace: 1 s, doubling, at most 30 s. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

export function retryDelayMs(attempts: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(attempts - 1, 16));
}

/**
 * Pattern types the proxy runs: the three it serves over gRPC, and session-manager, whose store
 * keeps the namespace's caller sessions (request-sessions.ts).
 */
const SERVED_TYPES = new Set(['keyvalue', 'producer', 'consumer', 'session-manager', 'mailbox']);

function isSessionStore(runner: Runner): runner is Runner & CallerSessionStore {
  return runner.type === 'session-manager';
}

/**
 * The namespaces this proxy serves and their running runners. `reconcile` makes the table match a
 * desired set: new namespaces start, changed ones are replaced (new runners start before old ones
 * stop), removed ones stop. A namespace whose runners fail to start (a backend down while the
 * proxy starts) is tried again after a backoff until it starts or is no longer wanted; until then
 * its calls get UNAVAILABLE, or go to its previous version if one is served. `route` finds the
 * runner for a call from its metadata.
 */
export class NamespaceTable {
  private readonly entries = new Map<string, Entry>();
  private readonly failing = new Map<string, Failing>();
  private reconciling: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly createRunner: RunnerFactory,
    private readonly logger: Logger,
  ) {}

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Wanted namespaces whose current version is not serving because its runners failed to start. */
  failingNames(): string[] {
    return [...this.failing.keys()].sort();
  }

  runners(): Runner[] {
    return [...this.entries.values()].flatMap((e) => e.runners);
  }

  /** The store of a served namespace's caller sessions: its (first) session-manager pattern. */
  sessionStore(name: string): CallerSessionStore | undefined {
    return this.entries.get(name)?.runners.find(isSessionStore);
  }

  /** Every served namespace's caller-session store. */
  sessionStores(): Array<{ store: CallerSessionStore; namespace: NamespaceRequest }> {
    return [...this.entries.values()].flatMap((e) => {
      const store = e.runners.find(isSessionStore);
      return store ? [{ store, namespace: e.served.namespace }] : [];
    });
  }

  /** Serialized: a reconcile waits for the previous one. */
  reconcile(desired: readonly ServedNamespace[]): Promise<void> {
    this.reconciling = this.reconciling.then(() => this.apply(desired));
    return this.reconciling;
  }

  private async apply(desired: readonly ServedNamespace[]): Promise<void> {
    if (this.stopped) return;
    const wanted = new Map(desired.map((d) => [d.namespace.namespace, d]));
    for (const name of this.failing.keys()) if (!wanted.has(name)) this.clearFailing(name);
    for (const [name, entry] of this.entries) {
      if (!wanted.has(name)) {
        this.entries.delete(name);
        await this.stopAll(entry.runners);
        this.logger.info({ namespace: name }, 'namespace no longer served');
      }
    }
    // Namespaces start side by side: a partition taking over many namespaces (failover) must not
    // wait for one slow backend connection per namespace in turn.
    await Promise.all([...wanted].map(([name, served]) => this.serve(name, served)));
  }

  private async serve(name: string, served: ServedNamespace): Promise<void> {
    const current = this.entries.get(name);
    const version = served.assignment.version;
    if (current && current.version === version && version !== 0n) {
      this.clearFailing(name);
      return;
    }
    try {
      const runners = await this.startRunners(served);
      this.clearFailing(name);
      this.entries.set(name, { served, version, runners });
      if (current) await this.stopAll(current.runners);
      this.logger.info(
        { namespace: name, version: Number(version), patterns: runners.map((r) => r.pattern) },
        current ? 'namespace updated' : 'namespace served',
      );
    } catch (err) {
      if (this.stopped) return;
      const attempts = (this.failing.get(name)?.attempts ?? 0) + 1;
      const delayMs = retryDelayMs(attempts);
      this.logger.error(
        { namespace: name, err: (err as Error).message, attempts, retryInMs: delayMs },
        'cannot serve namespace; keeping the previous version if any, and trying again',
      );
      this.clearFailing(name);
      const timer = setTimeout(() => {
        this.reconciling = this.reconciling.then(() => this.retry(name, served));
      }, delayMs);
      timer.unref();
      this.failing.set(name, { served, attempts, retryAt: Date.now() + delayMs, timer });
    }
  }

  /** The scheduled attempt for `name`, unless a reconcile since wanted another version or none. */
  private async retry(name: string, served: ServedNamespace): Promise<void> {
    if (this.stopped || this.failing.get(name)?.served !== served) return;
    await this.serve(name, served);
  }

  private clearFailing(name: string): void {
    const failing = this.failing.get(name);
    if (!failing) return;
    clearTimeout(failing.timer);
    this.failing.delete(name);
  }

  private async startRunners(served: ServedNamespace): Promise<Runner[]> {
    const started: Runner[] = [];
    try {
      for (const pattern of served.assignment.patterns) {
        if (!SERVED_TYPES.has(servedApi(pattern.type))) {
          // Every built-in type is served: this one comes from a module this proxy did not load.
          this.logger.warn(
            { namespace: served.namespace.namespace, pattern: pattern.name, type: pattern.type },
            'pattern not served: its type is unknown here (start the proxy with --pattern-module)',
          );
          continue;
        }
        const runner = await this.createRunner(served.namespace, served.assignment, pattern.name);
        await runner.start();
        started.push(runner);
      }
      return started;
    } catch (err) {
      await this.stopAll(started);
      throw err;
    }
  }

  private async stopAll(runners: readonly Runner[]): Promise<void> {
    for (const runner of [...runners].reverse()) {
      await runner
        .stop()
        .catch((err: unknown) =>
          this.logger.warn(
            { pattern: runner.pattern, err: (err as Error).message },
            'runner did not stop cleanly',
          ),
        );
    }
  }

  /** The runner of `type` for the call's namespace (and pattern, when the namespace has several). */
  route<R extends Runner>(metadata: Metadata, type: string): { runner: R; namespace: ServedNamespace } {
    const name = metadataValue(metadata, NAMESPACE_HEADER);
    if (!name)
      throw new PrismError('E_INVALID_ARGUMENT', `missing ${NAMESPACE_HEADER} metadata`, {
        hint: `send ${NAMESPACE_HEADER}: <namespace> with every call`,
      });
    const entry = this.entries.get(name);
    if (!entry) {
      const failing = this.failing.get(name);
      if (failing) {
        const inSeconds = Math.max(0, Math.ceil((failing.retryAt - Date.now()) / 1000));
        throw new PrismError(
          'E_UNAVAILABLE',
          `namespace '${name}' is not served yet: its runners failed to start (${failing.attempts} ${failing.attempts === 1 ? 'attempt' : 'attempts'}); the proxy tries again in ${inSeconds} s`,
          { hint: 'retry the call; the proxy log says why the namespace did not start' },
        );
      }
      throw new PrismError('E_NOT_FOUND', `namespace '${name}' is not served here`);
    }
    // A pattern module's type is routed by the API it serves (docs/sdk.md).
    const candidates = entry.runners.filter((r) => servedApi(r.type) === type);
    const wanted = metadataValue(metadata, PATTERN_HEADER);
    if (wanted) {
      const runner = candidates.find((r) => r.pattern === wanted);
      if (!runner)
        throw new PrismError('E_NOT_FOUND', `namespace '${name}' has no ${type} pattern '${wanted}'`);
      return { runner: runner as R, namespace: entry.served };
    }
    if (candidates.length === 0)
      throw new PrismError('E_NOT_FOUND', `namespace '${name}' has no ${type} pattern`);
    if (candidates.length > 1) {
      throw new PrismError('E_INVALID_ARGUMENT', `namespace '${name}' has several ${type} patterns`, {
        hint: `send ${PATTERN_HEADER} with one of: ${candidates.map((r) => r.pattern).join(', ')}`,
      });
    }
    return { runner: candidates[0] as R, namespace: entry.served };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const name of [...this.failing.keys()]) this.clearFailing(name);
    await this.reconciling;
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const entry of all) await this.stopAll(entry.runners);
  }
}
