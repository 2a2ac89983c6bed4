/**
 * The SDK's producer and consumer conformance suites (prismctl/sdk) against the built-in producer
 * and consumer runners on real backends: what a pattern module's messaging runners are held to is
 * what Prism's own runners keep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerRunnerConformance, producerRunnerConformance } from '../../../src/sdk/index.js';
import type { ConsumerRunnerApi, ProducerRunnerApi } from '../../../src/runners/types.js';
import { buildRunner, uniqueNamespace } from '../../unit/runners/helpers.js';
import { describeWithService, natsUrl, redisUrl, type ServiceName } from '../../support/services.js';

const t = { describe, it, beforeAll, afterAll, expect };
const MAX_RETRIES = 3;

const endpoints: Partial<Record<ServiceName, () => string>> = { redis: redisUrl, nats: natsUrl };

for (const backend of ['redis', 'nats'] as const) {
  await describeWithService(backend, `messaging conformance of the built-in runners on ${backend}`, () => {
    const slot = () => ({ backend, endpoint: endpoints[backend]!() });

    producerRunnerConformance(
      `built-in producer on ${backend}`,
      async () => {
        const namespace = uniqueNamespace('pconf');
        const topic = `conf.${namespace}`;
        return {
          topic,
          producer: buildRunner<ProducerRunnerApi & ReturnType<typeof buildRunner>>({
            type: 'producer',
            namespace,
            slots: { sink: slot() },
            settings: { topic },
          }),
          consumer: buildRunner<ConsumerRunnerApi & ReturnType<typeof buildRunner>>({
            type: 'consumer',
            namespace,
            slots: { source: slot() },
            settings: { topic, consumerGroup: 'observer' },
          }),
        };
      },
      t,
    );

    consumerRunnerConformance(
      `built-in consumer on ${backend}`,
      async () => {
        const namespace = uniqueNamespace('cconf');
        const topic = `conf.${namespace}`;
        return {
          topic,
          maxRetries: MAX_RETRIES,
          producer: buildRunner<ProducerRunnerApi & ReturnType<typeof buildRunner>>({
            type: 'producer',
            namespace,
            slots: { sink: slot() },
            settings: { topic },
          }),
          consumer: buildRunner<ConsumerRunnerApi & ReturnType<typeof buildRunner>>({
            type: 'consumer',
            namespace,
            slots: { source: slot(), 'dead-letter': slot() },
            settings: { topic, consumerGroup: 'billing', maxRetries: MAX_RETRIES, ackTimeout: '10s' },
          }),
          deadLetters: buildRunner<ConsumerRunnerApi & ReturnType<typeof buildRunner>>({
            type: 'consumer',
            name: 'dead-letters',
            namespace,
            slots: { source: slot() },
            settings: { topic: `${topic}.dead-letter`, consumerGroup: 'audit' },
          }),
        };
      },
      t,
    );
  });
}
