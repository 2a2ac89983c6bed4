/**
 * Lets a finished ioredis pipeline's commands and replies die young.
 *
 * ioredis (5.11, and 6.1 still) gives every Pipeline its `length` with Object.defineProperty on
 * the instance: a getter that closes over the pipeline. V8 allocates the accessor pair of such a
 * property in the old generation, so until the next full collection it holds the getter, and
 * through it the pipeline with its commands, their promises and the replies, alive across every
 * young-generation collection: all of it is promoted, and then the full collections that clear it
 * come often. With auto-pipelining every command rides in such a pipeline; a KeyValue Get through
 * the proxy promoted 1.6 KB of it (bench/RESULTS.md, session 16).
 *
 * The replacement `exec` runs ioredis's own and, once the pipeline's promise has settled (its
 * callers hold the results by then), empties what the pipeline refers to, so only its small shell
 * stays pinned. A settled pipeline is not executed again by ioredis. An ioredis whose pipeline
 * keeps no `promise` is left as it is (test/integration/drivers/redis-pipeline-release.test.ts then
 * fails on the queue it finds full), so an upgrade can cost memory, never a call.
 */
import { Pipeline } from 'ioredis';

/** The fields of ioredis's Pipeline that keep its commands and results. */
interface PipelineInternals {
  _queue: unknown[];
  _result: unknown[];
  promise: Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

const SETTLED: Promise<unknown[]> = Promise.resolve([]);
const ignore = (): void => undefined;

let applied = false;

/** Wraps Pipeline#exec once per process. */
export function releaseFinishedIoredisPipelines(): void {
  if (applied) return;
  applied = true;
  const prototype = Pipeline.prototype as unknown as PipelineInternals & {
    exec: (this: PipelineInternals, ...args: unknown[]) => unknown;
  };
  const exec = prototype.exec;
  prototype.exec = function (this: PipelineInternals, ...args: unknown[]): unknown {
    const result = exec.apply(this, args);
    const { promise } = this;
    if (!(promise instanceof Promise)) return result;
    const release = () => {
      if (this.promise !== promise) return;
      this._queue = [];
      this._result = [];
      this.promise = SETTLED;
      this.resolve = ignore;
      this.reject = ignore;
    };
    promise.then(release, release);
    return result;
  };
}
