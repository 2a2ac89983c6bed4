/**
 * Paces kafkajs 2.2.4's consumers: while messages flow, a consumer starts its fetches at least
 * `KAFKA_FETCH_INTERVAL_MS` apart, so each fetch carries what arrived meanwhile instead of one
 * produce request's worth.
 *
 * kafkajs fetches with `minBytes` 1: the broker answers as soon as anything is there, and the
 * consumer sends the next fetch as soon as it has handed the last one's messages on. Behind a
 * producer sending a batch every millisecond or two, that is a fetch per batch. On a Kafka stream
 * through the proxy (bench/proxy/stream.js, 100,000 messages) it was 2,659 fetches, 37 messages
 * each, against 350 for the raw client in the same run, and the broker spent 16–37 µs of CPU per
 * message instead of 7–10, on the same two cores as the proxy. Paced at 10 ms: about 440 fetches,
 * the broker at 10 µs per message, and the stream 20–26 % faster (bench/RESULTS.md, session 19).
 *
 * Raising `minBytes` would wait on the broker instead, but then an idle consumer's long poll
 * (`maxWaitTimeInMs`) answers a lone message late, or, kept short, wakes the broker many times a
 * second for nothing. This waits on the client, and only after a fetch that returned messages and
 * started less than the interval ago: an idle consumer's long poll is unchanged, and a message
 * that arrives after a quiet spell is fetched at once. A message right behind another one waits
 * at most the interval longer (Kafka's own producer lingers 5 ms, `linger.ms`, for the same
 * reason).
 */
import { createRequire } from 'node:module';

/** The least time between the starts of two fetches of a consumer while messages flow. */
export const KAFKA_FETCH_INTERVAL_MS = 10;

/** The fields of kafkajs's consumer Runner the pacing reads. */
interface RunnerInternals {
  fetch: (this: RunnerInternals, nodeId: number) => Promise<{ isEmpty(): boolean }[]>;
}

/** Marks kafkajs's fetch as paced, for every copy of this module a process loads (tests do). */
const PACED = Symbol.for('prism.kafka.fetchPaced');

/** Wraps kafkajs's Runner.prototype.fetch once per process. */
export function paceKafkajsFetches(): void {
  const Runner = createRequire(import.meta.url)('kafkajs/src/consumer/runner.js') as {
    prototype: RunnerInternals & { [PACED]?: true };
  };
  if (Runner.prototype[PACED]) return;
  Runner.prototype[PACED] = true;
  // When each runner's last fetch started, kept only while that fetch returned messages.
  const lastFlowingFetch = new WeakMap<RunnerInternals, number>();
  const fetch = Runner.prototype.fetch;
  Runner.prototype.fetch = async function (this: RunnerInternals, nodeId: number) {
    const last = lastFlowingFetch.get(this);
    if (last !== undefined) {
      const waitMs = last + KAFKA_FETCH_INTERVAL_MS - performance.now();
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.ceil(waitMs)));
    }
    const started = performance.now();
    const batches = await fetch.call(this, nodeId);
    if (batches.some((batch) => !batch.isEmpty())) lastFlowingFetch.set(this, started);
    else lastFlowingFetch.delete(this);
    return batches;
  };
}
