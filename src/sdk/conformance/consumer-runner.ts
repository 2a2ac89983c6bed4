import type { ConsumerRunnerApi, ProducerRunnerApi } from '../../runners/types.js';
import { CASE_HEADER, PUBLISHER, caseId, payloadText, sleep, watch } from './messaging-support.js';
import { bytes, type TestApi } from './test-api.js';

/** What the consumer suite runs against. */
export interface ConsumerConformanceRunners {
  /** Publishes to the consumer's topic. */
  producer: ProducerRunnerApi;
  /** The consumer under test: at-least-once, its `dead-letter` slot bound. */
  consumer: ConsumerRunnerApi;
  /** Reads the consumer's dead-letter topic (on the dead-letter slot's backend). */
  deadLetters: ConsumerRunnerApi;
  /** The consumer's topic and its `max_retries`. */
  topic: string;
  maxRetries: number;
}

/**
 * The Consumer delivery contract (docs/messaging.md "The contract") as a suite a pattern module
 * runs against its consumer: acknowledged messages are not delivered again, a negative
 * acknowledgement redelivers with `attempt` + 1, order per publisher, and the dead letter on the
 * `max_retries`-th delivery with its reason, original topic and attempts. `create` builds
 * unstarted runners over slots no other run uses; the suite starts and stops them.
 */
export function consumerRunnerConformance(
  name: string,
  create: () => Promise<ConsumerConformanceRunners>,
  t: TestApi,
): void {
  const { describe, it, beforeAll, afterAll, expect } = t;
  describe(`consumer runner conformance: ${name}`, () => {
    let r: ConsumerConformanceRunners;
    const publish = (id: string, payload: string) =>
      r.producer.publish({ payload: bytes(payload), headers: { [CASE_HEADER]: id } }, PUBLISHER);
    beforeAll(async () => {
      r = await create();
      for (const runner of [r.producer, r.consumer, r.deadLetters]) await runner.start();
    }, 60_000);
    afterAll(async () => {
      for (const runner of [r?.deadLetters, r?.consumer, r?.producer]) await runner?.stop();
    }, 60_000);

    it('delivers with attempt 1 and, once acknowledged, never again to the group', async () => {
      const id = caseId('ack');
      const w = await watch(r.consumer, { group: `g-${id}` }, id, (d) => d.ack());
      try {
        await publish(id, 'first');
        await w.until(1);
        await publish(id, 'second');
        await w.until(2);
        await sleep(500);
        expect(w.seen.map((d) => [payloadText(d), d.envelope.attempt])).toEqual([
          ['first', 1],
          ['second', 1],
        ]);
      } finally {
        await w.close();
      }
    }, 30_000);

    it('redelivers a negatively acknowledged message with attempt + 1', async () => {
      const id = caseId('nack');
      const w = await watch(r.consumer, { group: `g-${id}` }, id, (d) =>
        d.envelope.attempt === 1 ? d.nack('try again') : d.ack(),
      );
      try {
        const sent = await publish(id, 'retry-me');
        await w.until(2);
        expect(w.seen.map((d) => [d.envelope.messageId, d.envelope.attempt])).toEqual([
          [sent.messageId, 1],
          [sent.messageId, 2],
        ]);
      } finally {
        await w.close();
      }
    }, 30_000);

    it('delivers one publisher’s sequential messages in order', async () => {
      const id = caseId('order');
      const w = await watch(r.consumer, { group: `g-${id}` }, id, (d) => d.ack());
      try {
        const sent = ['o1', 'o2', 'o3', 'o4'];
        for (const p of sent) await publish(id, p);
        await w.until(sent.length);
        expect(w.seen.map(payloadText)).toEqual(sent);
      } finally {
        await w.close();
      }
    }, 30_000);

    it('dead-letters a message nacked on its max_retries-th delivery, with reason, original topic and attempts', async () => {
      const id = caseId('dead');
      const dead = await watch(r.deadLetters, { group: `dl-${id}` }, id, (d) => d.ack());
      const w = await watch(r.consumer, { group: `g-${id}` }, id, (d) => d.nack('cannot parse'));
      try {
        const sent = await publish(id, 'poison');
        await dead.until(1);
        const copy = dead.seen[0]!.envelope;
        expect([
          payloadText(dead.seen[0]!),
          copy.headers['prism-dead-letter-reason'],
          copy.headers['prism-original-topic'],
          copy.headers['prism-attempts'],
        ]).toEqual(['poison', 'cannot parse', r.topic, String(r.maxRetries)]);
        expect(w.seen.map((d) => d.envelope.attempt)).toEqual(
          Array.from({ length: r.maxRetries }, (_, i) => i + 1),
        );
        // The original is acknowledged: the group does not see it again.
        await sleep(1000);
        expect(w.seen.length).toBe(r.maxRetries);
        expect(w.seen[0]!.envelope.messageId).toBe(sent.messageId);
      } finally {
        await w.close();
        await dead.close();
      }
    }, 40_000);
  });
}
