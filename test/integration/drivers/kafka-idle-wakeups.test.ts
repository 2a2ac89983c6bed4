/**
 * An idle Kafka driver does not wake every millisecond: kafkajs 2.2.4 re-arms a 1 ms timer per
 * broker connection after its last answered request, forever (src/drivers/kafka/request-queue-fix.ts
 * replaces that scheduling). The driver publishes, consumes and acknowledges, then sits idle; the
 * timers it arms meanwhile are counted, and it still publishes and delivers afterwards.
 */
import { afterAll, expect, it, vi } from 'vitest';
import type { Delivery, Message } from '../../../src/drivers/interfaces.js';
import { createKafkaDriver, type KafkaDriver } from '../../../src/drivers/kafka/index.js';
import { describeWithService, kafkaBrokers, uniqueName } from '../../support/services.js';

await describeWithService('kafka', 'Kafka test service', () => {
  const namespace = uniqueName('kafka-idle').replace(/[^a-z0-9-]/g, '');
  let driver: KafkaDriver | undefined;

  afterAll(async () => {
    vi.restoreAllMocks();
    await driver?.close();
  });

  const message = (text: string): Message => ({
    topic: 'idle',
    payload: new TextEncoder().encode(text),
    headers: {},
  });

  it('arms almost no timers below 2 ms while idle, and still publishes and delivers after', async () => {
    driver = createKafkaDriver({
      namespace,
      endpoint: `kafka://${kafkaBrokers().join(',')}`,
      kafka: { partitions: 1 },
    });
    await driver.connect();
    const seen: string[] = [];
    let delivered: (() => void) | undefined;
    const sub = await driver.consume('idle', 'g', async (d: Delivery) => {
      seen.push(new TextDecoder().decode(d.payload));
      await d.ack();
      delivered?.();
    });
    try {
      const deliveredOnce = (text: string) =>
        new Promise<void>((resolve) => {
          delivered = () => seen.includes(text) && resolve();
        });
      let next = deliveredOnce('before');
      await driver.enqueueMany([message('before')]);
      await next;

      const timers = vi.spyOn(globalThis, 'setTimeout');
      await new Promise((r) => setTimeout(r, 1000));
      const short = timers.mock.calls.filter(([, ms]) => typeof ms !== 'number' || ms < 2).length;
      timers.mockRestore();
      // kafkajs alone arms about 900 a second for each connection.
      expect(short).toBeLessThan(20);

      next = deliveredOnce('after');
      await driver.enqueueMany([message('after')]);
      await next;
      expect(seen).toEqual(['before', 'after']);
    } finally {
      await sub.close();
    }
  }, 60_000);
});
