import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Admin, Consumer, EachMessagePayload, Producer } from 'kafkajs';
import { describeWithService, kafkaClient, uniqueName } from '../../support/services.js';

await describeWithService('kafka', 'Kafka test service', () => {
  const kafka = kafkaClient({ clientId: 'prism-smoke' });
  const topic = uniqueName('prism-smoke');
  const groupId = uniqueName('prism-smoke-group');
  let admin: Admin;
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;

  beforeAll(async () => {
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await consumer?.disconnect();
    await producer?.disconnect();
    if (admin) {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it('delivers produced messages with headers to a consumer group and records its committed offset', async () => {
    expect(
      await admin.createTopics({
        topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
        waitForLeaders: true,
      }),
    ).toBe(true);

    producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        { key: 'k1', value: 'first', headers: { 'x-prism-namespace': 'smoke' } },
        { key: 'k2', value: 'second', headers: { 'x-prism-namespace': 'smoke' } },
      ],
    });

    consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });

    const received: { key: string; value: string; header: string; offset: string }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no messages within 30 s')), 30_000);
      void consumer!
        .run({
          autoCommit: false,
          eachMessage: async ({ message, partition }: EachMessagePayload) => {
            received.push({
              key: message.key?.toString() ?? '',
              value: message.value?.toString() ?? '',
              header: message.headers?.['x-prism-namespace']?.toString() ?? '',
              offset: message.offset,
            });
            await consumer!.commitOffsets([
              { topic, partition, offset: (BigInt(message.offset) + 1n).toString() },
            ]);
            if (received.length === 2) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    await done;
    await consumer.stop();

    expect(received).toEqual([
      { key: 'k1', value: 'first', header: 'smoke', offset: '0' },
      { key: 'k2', value: 'second', header: 'smoke', offset: '1' },
    ]);

    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    expect(committed).toEqual([{ topic, partitions: [{ partition: 0, offset: '2', metadata: null }] }]);
  });
});
