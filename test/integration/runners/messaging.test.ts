/**
 * Producer runner → consumer runner over real brokers (Kafka, NATS JetStream): the envelope the
 * consumer receives is checked field by field against what the producer stamped, and a nacked
 * message comes back and ends in the dead-letter slot on the same backend.
 */
import { create } from '@bufbuild/protobuf';
import { afterEach, expect, it } from 'vitest';
import { TraceContextSchema } from '../../../src/gen/prism/data/v1/envelope_pb.js';
import type { AnyDriver, Delivery } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import type { ConsumerRunner } from '../../../src/runners/consumer/runner.js';
import type { ProducerRunner } from '../../../src/runners/producer/runner.js';
import type { ConsumerDelivery } from '../../../src/runners/types.js';
import { isUuidV7 } from '../../../src/runners/uuid.js';
import { describeWithService, kafkaBrokers, natsUrl, type ServiceName } from '../../support/services.js';
import { buildRunner, bytes, eventually, memoryLogger, uniqueNamespace } from '../../unit/runners/helpers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

interface Broker {
  service: ServiceName;
  backend: string;
  endpoint: () => string;
}

const BROKERS: Broker[] = [
  { service: 'kafka', backend: 'kafka', endpoint: () => `kafka://${kafkaBrokers().join(',')}` },
  {
    service: 'nats',
    backend: 'nats',
    endpoint: () => natsUrl(),
    // One JetStream stream per namespace with msgID = prism-message-id: the dead letter (same id,
    // topic <topic>.dead-letter) is dropped as a duplicate of the original within 2 minutes.
  },
];

for (const broker of BROKERS) {
  await describeWithService(broker.service, `producer → consumer runners over ${broker.backend}`, () => {
    const slot = () => ({ backend: broker.backend, endpoint: broker.endpoint() });

    async function pair(
      namespace: string,
      consumerSettings: Record<string, unknown> = {},
      deadLetter = false,
    ) {
      const producer = buildRunner<ProducerRunner>({
        type: 'producer',
        namespace,
        slots: { sink: slot() },
        settings: { topic: 'orders.events' },
      });
      const consumer = buildRunner<ConsumerRunner>(
        {
          type: 'consumer',
          namespace,
          slots: { source: slot(), ...(deadLetter ? { 'dead-letter': slot() } : {}) },
          settings: { topic: 'orders.events', consumerGroup: 'billing', ...consumerSettings },
        },
        { logger: memoryLogger() },
      );
      await producer.start();
      cleanup.push(() => producer.stop());
      await consumer.start();
      cleanup.push(() => consumer.stop());
      return { producer, consumer };
    }

    it('delivers the envelope the producer stamped, field by field', async () => {
      const namespace = uniqueNamespace('it');
      const { producer, consumer } = await pair(namespace);
      const seen: ConsumerDelivery[] = [];
      await consumer.subscribe({}, async (d) => {
        seen.push(d);
        await d.ack();
      });
      const payload = bytes('{"order":42,"total":"19.99"}');
      const published = await producer.publish(
        {
          payload,
          contentType: 'application/json',
          correlationId: 'checkout-7',
          headers: { 'x-region': 'eu-west', 'x-attempted-by': 'checkout' },
          trace: create(TraceContextSchema, { traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE' }),
        },
        { subject: 'user:alice', tenant: 'acme', roles: ['writer', 'billing-admin'] },
      );
      expect(isUuidV7(published.messageId)).toBe(true);

      await eventually(() => seen.length >= 1, 30_000, 'the delivery');
      const envelope = seen[0]!.envelope;
      expect(envelope.messageId).toBe(published.messageId);
      expect(envelope.topic).toBe('orders.events');
      expect(envelope.namespace).toBe(namespace);
      expect(envelope.publishedAtMs).toBe(BigInt(published.publishedAtMs));
      expect(envelope.contentType).toBe('application/json');
      expect(envelope.correlationId).toBe('checkout-7');
      expect(envelope.session?.subject).toBe('user:alice');
      expect(envelope.session?.tenant).toBe('acme');
      expect(envelope.session?.roles).toEqual(['writer', 'billing-admin']);
      expect(envelope.trace?.traceparent).toBe(TRACEPARENT);
      expect(envelope.trace?.tracestate).toBe('congo=t61rcWkgMzE');
      expect(envelope.headers).toEqual({ 'x-region': 'eu-west', 'x-attempted-by': 'checkout' });
      expect(envelope.payload).toEqual(payload);
      expect(envelope.attempt).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(seen).toHaveLength(1);
    });

    it('redelivers a nacked message and dead-letters it after max_retries with payload, headers and reason', async () => {
      const namespace = uniqueNamespace('it');
      const { producer, consumer } = await pair(namespace, { maxRetries: 2 }, true);
      const seen: ConsumerDelivery[] = [];
      await consumer.subscribe({}, async (d) => {
        seen.push(d);
        await d.nack(`failed on attempt ${d.envelope.attempt}`);
      });
      const published = await producer.publish(
        { payload: bytes('poison'), headers: { 'x-order': '13' } },
        {
          subject: 'svc:checkout',
          tenant: 'acme',
          roles: [],
        },
      );

      // Read the dead-letter topic as a plain driver consumer would.
      const reader: AnyDriver = await createDriver(broker.backend, {
        endpoint: broker.endpoint(),
        namespace,
      });
      await reader.connect();
      cleanup.push(() => reader.close());
      const dead: Delivery[] = [];
      const sub = await reader.consume!('orders.events.dead-letter', 'dlq-reader', async (d) => {
        dead.push(d);
        await d.ack();
      });
      cleanup.push(() => sub.close());

      await eventually(() => dead.length >= 1, 45_000, 'the dead letter');
      expect(seen.map((d) => d.envelope.attempt)).toEqual([1, 2]);
      expect(new TextDecoder().decode(dead[0]!.payload)).toBe('poison');
      expect(dead[0]!.headers).toMatchObject({
        'prism-message-id': published.messageId,
        'prism-namespace': namespace,
        'prism-session-subject': 'svc:checkout',
        'x-order': '13',
        'prism-dead-letter-reason': 'failed on attempt 2',
        'prism-original-topic': 'orders.events',
        'prism-attempts': '2',
      });
    });
  });
}
