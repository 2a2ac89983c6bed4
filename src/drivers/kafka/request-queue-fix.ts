/**
 * Stops kafkajs 2.2.4 from waking every millisecond on each idle broker connection.
 *
 * After every answered request, kafkajs's RequestQueue schedules its next look at the pending
 * queue for `throttledUntil - Date.now()` ms. Unthrottled, `throttledUntil` is -1, so the delay is
 * minus the epoch: Node runs the timer after 1 ms (warning "TimeoutNegativeWarning" once), and the
 * check schedules itself again, forever (kafkajs#1704, #1751; no kafkajs release since 2023).
 * Measured here: an idle connected producer fired 921 such timers a second and spent 20 ms of CPU
 * a second, for each connection a proxy's Kafka namespaces hold open.
 *
 * The replacement keeps kafkajs's behaviour where it matters (a throttled queue is looked at when
 * the throttle ends; a queue with pending requests at least every 10 ms) and schedules nothing
 * when nothing is pending and nothing is throttled: a new request is pushed through
 * `push`, which sends it or queues it and schedules a look itself.
 */
import { createRequire } from 'node:module';

/** The fields of kafkajs's RequestQueue the replacement reads and writes. */
interface RequestQueueInternals {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL. */
const CHECK_PENDING_MS = 10;

let applied = false;

/** Replaces RequestQueue.scheduleCheckPendingRequests once per process. */
export function fixKafkajsIdleWakeups(): void {
  if (applied) return;
  applied = true;
  const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as {
    prototype: RequestQueueInternals;
  };
  RequestQueue.prototype.scheduleCheckPendingRequests = function (this: RequestQueueInternals): void {
    if (this.throttleCheckTimeoutId) return;
    const untilUnthrottled = this.throttledUntil - Date.now();
    let delayMs: number;
    if (this.pending.length > 0) delayMs = untilUnthrottled > 0 ? untilUnthrottled : CHECK_PENDING_MS;
    else if (untilUnthrottled > 0) delayMs = untilUnthrottled;
    else return;
    this.throttleCheckTimeoutId = setTimeout(() => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    }, delayMs);
  };
}
