/**
 * The Kafka driver commits a partition's lowest unacknowledged offset, so messages acknowledged
 * above an unacknowledged one are not covered by the commit. The next consumer of the partition (a
 * closed stream, a restart, a failover to another proxy) must still not deliver them again: the
 * driver carries them in the commit's metadata (docs/messaging.md, the kafka row).
 */
import { afterAll, expect, it } from 'vitest';
import type { Delivery, Message } from '../../../src/drivers/interfaces.js';
import { createKafkaDriver, type KafkaDriver } from '../../../src/drivers/kafka/index.js';
import { describeWithService, kafkaBrokers, uniqueName } from '../../support/services.js';

await describeWithService('kafka', 'Kafka test service', () => {
  const namespace = uniqueName('kafka-acked').replace(/[^a-z0-9-]/g, '');
  const drivers: KafkaDriver[] = [];
  const driver = async () => {
    const d = createKafkaDriver({
      namespace,
      endpoint: `kafka://${kafkaBrokers().join(',')}`,
      kafka: { partitions: 1, sessionTimeoutMs: 6000, rebalanceTimeoutMs: 3000, heartbeatIntervalMs: 500 },
    });
    drivers.push(d);
    await d.connect();
    return d;
  };
  const message = (text: string): Message => ({
    topic: 'orders',
    payload: new TextEncoder().encode(text),
    headers: {},
  });
  const text = (d: Delivery) => new TextDecoder().decode(d.payload);

  afterAll(async () => {
    await Promise.all(drivers.map((d) => d.close()));
  });

  it('does not deliver again what was acknowledged above an unacknowledged message to the next consumer', async () => {
    const first = await driver();
    await first.enqueueMany(['m0', 'm1', 'm2'].map(message));
    const acked: string[] = [];
    let done: () => void;
    const allAcked = new Promise<void>((resolve) => (done = resolve));
    const held = await first.consume(
      'orders',
      'g',
      async (d) => {
        if (text(d) === 'm0') return; // never acknowledged
        await d.ack();
        acked.push(text(d));
        if (acked.length === 2) done();
      },
      { ackTimeoutMs: 60_000 },
    );
    await allAcked;
    await held.close();
    await first.close();

    const next = await driver();
    const seen: string[] = [];
    const sub = await next.consume('orders', 'g', async (d) => {
      seen.push(text(d));
      await d.ack();
    });
    const until = Date.now() + 20_000;
    while (!seen.includes('m0') && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500)); // anything after m0 would be here by now
    await sub.close();
    expect(acked.sort()).toEqual(['m1', 'm2']);
    expect(seen).toEqual(['m0']);
  }, 60_000);

  it('fails an acknowledgement that was not committed before its partition moved to another member, instead of answering OK', async () => {
    const first = await driver();
    await first.enqueueMany(['r0', 'r1'].map((t) => ({ ...message(t), topic: 'returns' })));
    let r0: Delivery | undefined;
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const held = await first.consume(
      'returns',
      'g2',
      async (d) => {
        if (text(d) === 'r0')
          r0 = d; // settled later, by the test
        else await blocked; // kafkajs heartbeats between messages only: this member stops heartbeating
      },
      { ackTimeoutMs: 60_000 },
    );
    try {
      const until = Date.now() + 20_000;
      while (!r0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(r0).toBeDefined();

      // A second member joins; the silent first one is evicted after its session timeout, and the
      // partition, with nothing committed, goes to the second one, which reads r0 again.
      const second = await driver();
      const seen: string[] = [];
      const sub = await second.consume('returns', 'g2', async (d) => {
        seen.push(text(d));
        await d.ack();
      });
      while (!seen.includes('r0') && Date.now() < until + 20_000) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toContain('r0');

      // Too late: an OK here would be a lie, since r0 has been delivered again.
      await expect(r0!.ack()).rejects.toThrow(/kafka is unavailable: ack \(offset commit\)/);
      await sub.close();
    } finally {
      release();
      await held.close();
    }
  }, 90_000);
});
