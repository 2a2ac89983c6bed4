/**
 * The lifecycle every runner shares (STYLE.md: lifecycles that close cleanly): `start()` binds and
 * connects the slots, calls are tracked while they run, and `stop()` refuses new calls, lets the
 * runner flush (`onStopping`), waits for every tracked call, then closes the drivers in reverse
 * order. A stopped runner can be started again.
 */
import { PrismError } from '../errors.js';
import type { Runner } from './types.js';
import type { SlotSet } from './slots.js';

/** What runners log; a pino Logger fits. */
export interface RunnerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Writes one JSON line per event to stderr, for runners built without a logger. */
export const stderrLogger: RunnerLogger = {
  info: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'info', msg, ...obj })}\n`),
  warn: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg, ...obj })}\n`),
  error: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'error', msg, ...obj })}\n`),
};

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export abstract class RunnerBase implements Runner {
  abstract readonly type: string;
  private lifecycle: State = 'new';
  private readonly inflight = new Set<Promise<unknown>>();
  private transition: Promise<void> | undefined;

  protected constructor(
    readonly namespace: string,
    readonly pattern: string,
    protected readonly slots: SlotSet,
  ) {}

  protected get label(): string {
    return `${this.namespace}/${this.pattern}`;
  }

  get running(): boolean {
    return this.lifecycle === 'running';
  }

  async start(): Promise<void> {
    if (this.transition) await this.transition.catch(() => undefined);
    if (this.lifecycle === 'running') return;
    this.lifecycle = 'starting';
    this.transition = (async () => {
      try {
        await this.slots.start();
        await this.onStart();
        this.lifecycle = 'running';
      } catch (err) {
        await this.slots.stop().catch(() => undefined);
        this.lifecycle = 'stopped';
        throw err;
      }
    })();
    await this.transition;
  }

  async stop(): Promise<void> {
    if (this.transition) await this.transition.catch(() => undefined);
    if (this.lifecycle !== 'running') return;
    this.lifecycle = 'stopping';
    this.transition = (async () => {
      try {
        await this.onStopping();
        while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
      } finally {
        this.lifecycle = 'stopped';
        await this.slots.stop();
      }
    })();
    await this.transition;
  }

  async health(): Promise<void> {
    await this.slots.health();
  }

  /** After the slots connected; a failure here stops the slots again. */
  protected async onStart(): Promise<void> {}

  /** New calls are refused already; flush and release what the runner holds. */
  protected async onStopping(): Promise<void> {}

  /** Runs `operation` as a tracked call; refused unless the runner is running. */
  protected track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.lifecycle !== 'running') {
      return Promise.reject(
        new PrismError(
          'E_UNAVAILABLE',
          `${this.label} is ${this.lifecycle === 'stopping' ? 'stopping' : 'not running'}`,
        ),
      );
    }
    return this.trackAlways(operation);
  }

  /** Tracks work that `stop()` must wait for even while stopping (e.g. a batch flush). */
  protected trackAlways<T>(operation: () => Promise<T>): Promise<T> {
    const promise = operation();
    this.inflight.add(promise);
    const forget = () => this.inflight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }
}
