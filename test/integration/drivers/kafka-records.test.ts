/**
 * The Kafka driver produces with the one-buffer record encoder (src/drivers/kafka/record-encoder.ts)
 * and the sliced CRC-32C (crc32c.ts), and fetches with the lean record decoder (record-decoder.ts),
 * all three in kafkajs's place. A real broker, which refuses a batch whose checksum is wrong, takes
 * the records: a batch of messages with unicode, empty and long headers and payloads of several
 * sizes comes back byte-exact, in order, through the driver's consumer and through a plain kafkajs
 * consumer reading the same topic (in this process, so with the same replacements; the unit tests
 * compare each with kafkajs's own).
 */
import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import { afterAll, expect, it } from 'vitest';
import type { Delivery, Message } from '../../../src/drivers/interfaces.js';
import { createKafkaDriver, type KafkaDriver } from '../../../src/drivers/kafka/index.js';
import { kafkaTopic } from '../../../src/drivers/kafka/names.js';
import { crc32c, useSlicedKafkaCrc32c } from '../../../src/drivers/kafka/crc32c.js';
import { leanRecordDecoder, useLeanKafkaRecordDecoder } from '../../../src/drivers/kafka/record-decoder.js';
import { oneBufferRecord, useOneBufferKafkaRecords } from '../../../src/drivers/kafka/record-encoder.js';
import { describeWithService, kafkaBrokers, uniqueName } from '../../support/services.js';

await describeWithService('kafka', 'Kafka test service', () => {
  const namespace = uniqueName('kafka-records').replace(/[^a-z0-9-]/g, '');
  let driver: KafkaDriver | undefined;
  const plain = new kafkajs.Kafka({ brokers: kafkaBrokers(), logLevel: kafkajs.logLevel.NOTHING });
  const reader = plain.consumer({ groupId: `${namespace}-plain` });

  afterAll(async () => {
    await reader.disconnect().catch(() => undefined);
    await driver?.close();
  });

  const messages: Message[] = [0, 1, 100, 4_095, 4_096, 70_000].map((size, i) => ({
    topic: 'records',
    payload: new Uint8Array(size).map((_, j) => (i * 31 + j) % 251),
    headers: {
      'prism-message-id': `m-${i}`,
      empty: '',
      'unicode-ключ': `значение ✓ ${i} 😀`,
      long: 'h'.repeat(300 + i),
    },
  }));

  it("puts the record encoder, the checksum and the record decoder in kafkajs's place, and a broker returns the records byte-exact", async () => {
    driver = createKafkaDriver({
      namespace,
      endpoint: `kafka://${kafkaBrokers().join(',')}`,
      kafka: { partitions: 1 },
    });
    await driver.connect();
    expect(useOneBufferKafkaRecords()).toBe(true);
    const require = createRequire(import.meta.url);
    const recordModule = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/index.js');
    expect(require.cache[recordModule]?.exports).toBe(oneBufferRecord);
    expect(useSlicedKafkaCrc32c()).toBe(true);
    expect(require.cache[require.resolve('kafkajs/src/protocol/recordBatch/crc32C/index.js')]?.exports).toBe(
      crc32c,
    );
    expect(useLeanKafkaRecordDecoder()).toBe(true);
    expect(
      require.cache[require.resolve('kafkajs/src/protocol/recordBatch/record/v0/decoder.js')]?.exports,
    ).toBe(leanRecordDecoder);

    const seen: Delivery[] = [];
    let all: () => void = () => undefined;
    const delivered = new Promise<void>((resolve) => (all = resolve));
    const sub = await driver.consume('records', 'g', async (d: Delivery) => {
      seen.push(d);
      await d.ack();
      if (seen.length === messages.length) all();
    });
    try {
      await driver.enqueueMany(messages);
      await delivered;
    } finally {
      await sub.close();
    }
    expect(seen.map((d) => Buffer.from(d.payload).toString('hex'))).toEqual(
      messages.map((m) => Buffer.from(m.payload).toString('hex')),
    );
    for (const [i, d] of seen.entries()) expect(d.headers).toMatchObject(messages[i]!.headers);

    // A plain Kafka client reads the same records: payload and headers as written.
    await reader.connect();
    await reader.subscribe({ topic: kafkaTopic(namespace, 'records'), fromBeginning: true });
    const plainSeen: kafkajs.KafkaMessage[] = [];
    await new Promise<void>((resolve) => {
      void reader.run({
        eachMessage: async ({ message }) => {
          plainSeen.push(message);
          if (plainSeen.length === messages.length) resolve();
        },
      });
    });
    for (const [i, m] of plainSeen.entries()) {
      expect(m.value?.equals(Buffer.from(messages[i]!.payload))).toBe(true);
      expect(m.headers?.['unicode-ключ']?.toString()).toBe(messages[i]!.headers['unicode-ключ']);
      expect(m.headers?.['long']?.toString()).toBe(messages[i]!.headers['long']);
      expect(m.headers?.['empty']?.toString()).toBe('');
    }
  });
});
