import type { ConsumerRunnerApi, ProducerRunnerApi } from '../../runners/types.js';
import { CASE_HEADER, PUBLISHER, caseId, payloadText, watch } from './messaging-support.js';
import { bytes, type TestApi } from './test-api.js';

/** What the producer suite runs against: a producer, and a consumer of its topic to observe it. */
export interface ProducerConformanceRunners {
  producer: ProducerRunnerApi;
  /** Reads the producer's topic (at-least-once, so a group reads what was published before it). */
  consumer: ConsumerRunnerApi;
  /** The producer's topic. */
  topic: string;
}

/**
 * The Producer contract (prism.data.v1.Producer as a runner keeps it; docs/messaging.md "The
 * contract") as a suite a pattern module runs against its producer: ids and envelopes, order per
 * publisher, batch order, and refused topics. `create` builds unstarted runners over slots no
 * other run uses; the suite starts and stops them.
 */
export function producerRunnerConformance(
  name: string,
  create: () => Promise<ProducerConformanceRunners>,
  t: TestApi,
): void {
  const { describe, it, beforeAll, afterAll, expect } = t;
  describe(`producer runner conformance: ${name}`, () => {
    let r: ProducerConformanceRunners;
    beforeAll(async () => {
      r = await create();
      await r.producer.start();
      await r.consumer.start();
    }, 60_000);
    afterAll(async () => {
      await r?.consumer.stop();
      await r?.producer.stop();
    }, 60_000);

    it('answers each publish with a UUIDv7 message id and the publish time, and delivers the envelope', async () => {
      const id = caseId('envelope');
      const w = await watch(r.consumer, { group: `g-${id}` }, id, (d) => d.ack());
      try {
        const before = Date.now();
        const res = await r.producer.publish(
          {
            payload: bytes('hello'),
            contentType: 'text/plain',
            correlationId: `corr-${id}`,
            headers: { [CASE_HEADER]: id, color: 'blue' },
          },
          PUBLISHER,
        );
        expect(
          /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(res.messageId),
        ).toBe(true);
        expect(res.publishedAtMs >= before - 1000 && res.publishedAtMs <= Date.now() + 1000).toBe(true);
        await w.until(1);
        const e = w.seen[0]!.envelope;
        expect([e.messageId, e.topic, payloadText(w.seen[0]!), e.contentType, e.correlationId]).toEqual([
          res.messageId,
          r.topic,
          'hello',
          'text/plain',
          `corr-${id}`,
        ]);
        expect([e.headers.color, e.session?.subject, e.session?.tenant, e.attempt]).toEqual([
          'blue',
          PUBLISHER.subject,
          PUBLISHER.tenant,
          1,
        ]);
      } finally {
        await w.close();
      }
    }, 30_000);

    it('delivers what one publisher publishes one call after another in that order', async () => {
      const id = caseId('order');
      const w = await watch(r.consumer, { group: `g-${id}` }, id, (d) => d.ack());
      try {
        const sent = ['m1', 'm2', 'm3', 'm4', 'm5'];
        for (const p of sent)
          await r.producer.publish({ payload: bytes(p), headers: { [CASE_HEADER]: id } }, PUBLISHER);
        await w.until(sent.length);
        expect(w.seen.map(payloadText)).toEqual(sent);
      } finally {
        await w.close();
      }
    }, 30_000);

    it('publishes a batch in batch order, one result per message', async () => {
      const id = caseId('batch');
      const w = await watch(r.consumer, { group: `g-${id}` }, id, (d) => d.ack());
      try {
        const sent = ['b1', 'b2', 'b3', 'b4'];
        const results = await r.producer.publishBatch(
          sent.map((p) => ({ payload: bytes(p), headers: { [CASE_HEADER]: id } })),
          PUBLISHER,
        );
        expect(new Set(results.map((x) => x.messageId)).size).toBe(sent.length);
        await w.until(sent.length);
        expect(w.seen.map(payloadText)).toEqual(sent);
        expect(w.seen.map((d) => d.envelope.messageId)).toEqual(results.map((x) => x.messageId));
      } finally {
        await w.close();
      }
    }, 30_000);

    it('refuses a topic outside ^[A-Za-z0-9._-]{1,249}$ with E_INVALID_ARGUMENT', async () => {
      const err = await r.producer
        .publish({ topic: 'no spaces!', payload: bytes('x') }, PUBLISHER)
        .then(() => undefined)
        .catch((e: unknown) => (e as { code?: string }).code);
      expect(err).toBe('E_INVALID_ARGUMENT');
    });
  });
}
