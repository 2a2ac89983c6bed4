import type { CallerSession, ConsumerDelivery, ConsumerRunnerApi } from '../../runners/types.js';

/** The publisher every conformance message carries (its `session` in the envelope). */
export const PUBLISHER: CallerSession = {
  subject: 'conformance-publisher',
  tenant: 'conformance',
  roles: ['writer'],
};

/** The header that ties a message to the case that published it; other cases' messages are acked. */
export const CASE_HEADER = 'conformance-case';

let cases = 0;
/** A case id no other case of this process uses. */
export function caseId(label: string): string {
  cases++;
  return `${label}-${Date.now().toString(36)}-${cases}`;
}

/**
 * A subscription that keeps the deliveries of one case (by CASE_HEADER) and acknowledges every
 * other message at once, so earlier cases' leftovers never count. `handle` settles each delivery
 * of the case; by default nothing is settled until the case does it.
 */
export async function watch(
  consumer: ConsumerRunnerApi,
  options: { topic?: string; group: string },
  id: string,
  handle: (d: ConsumerDelivery, seen: ConsumerDelivery[]) => Promise<void> | void = () => undefined,
): Promise<{
  seen: ConsumerDelivery[];
  until(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}> {
  const seen: ConsumerDelivery[] = [];
  const subscription = await consumer.subscribe({ ...options, prefetch: 16 }, async (d) => {
    if (d.envelope.headers[CASE_HEADER] !== id) return d.ack();
    seen.push(d);
    await handle(d, seen);
  });
  return {
    seen,
    until: async (n, timeoutMs = 20_000) => {
      const end = Date.now() + timeoutMs;
      while (seen.length < n) {
        if (Date.now() > end)
          throw new Error(`case ${id}: ${seen.length} of ${n} deliveries after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => subscription.close(),
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const payloadText = (d: ConsumerDelivery) => new TextDecoder().decode(d.envelope.payload);
