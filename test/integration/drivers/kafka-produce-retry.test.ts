/**
 * The Kafka driver when a produce request reaches the broker but its answer does not (a broker
 * killed between appending and answering): the publish fails with BackendDownError, and
 * - the caller's retry of the same messages is stored once (docs/messaging.md, "a batch retried
 *   after the backend was down"), not once per attempt;
 * - a different batch sent next is stored too, not taken by the broker for the one whose answer
 *   was lost.
 * The lost answer is made by a forwarder in front of the shared test Kafka that closes the
 * connection instead of passing on the answer to a Produce request; the driver's connections to
 * the broker are sent through it.
 */
import net, { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BackendDownError, type Message } from '../../../src/drivers/interfaces.js';
import { createKafkaDriver, kafkaTopic, type KafkaDriver } from '../../../src/drivers/kafka/index.js';
import { describeWithService, kafkaBrokers, kafkaClient, uniqueName } from '../../support/services.js';

const PRODUCE = 0; // Kafka API key

await describeWithService('kafka', 'Kafka test service', () => {
  const [host, portText] = kafkaBrokers()[0]!.split(':');
  const brokerPort = Number(portText);
  const originalConnect = net.connect;
  let forwarder: Server;
  let forwarderPort = 0;
  /** While true, the answer to every Produce request is swallowed and its connection closed. */
  let loseProduceAnswers = false;
  let lostAnswers = 0;
  const namespace = uniqueName('kafka-produce-retry').replace(/[^a-z0-9-]/g, '');
  const drivers: KafkaDriver[] = [];

  /** Splits a byte stream into Kafka frames (a 4-byte size, then that many bytes). */
  function frames(socket: Socket, onFrame: (frame: Buffer) => boolean): void {
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const frame = pending.subarray(0, 4 + pending.readInt32BE(0));
        pending = pending.subarray(frame.length);
        if (!onFrame(frame)) return;
      }
    });
  }

  beforeAll(async () => {
    forwarder = createServer((client) => {
      const upstream = originalConnect({ host, port: brokerPort });
      const produceRequests = new Set<number>();
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      for (const s of [client, upstream]) {
        s.on('error', close);
        s.on('close', close);
      }
      frames(client, (request) => {
        // Request header: api_key int16, api_version int16, correlation_id int32.
        if (request.readInt16BE(4) === PRODUCE) produceRequests.add(request.readInt32BE(8));
        upstream.write(request);
        return true;
      });
      frames(upstream, (response) => {
        if (produceRequests.delete(response.readInt32BE(4)) && loseProduceAnswers) {
          lostAnswers++;
          close();
          return false;
        }
        client.write(response);
        return true;
      });
    });
    await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
    forwarderPort = (forwarder.address() as net.AddressInfo).port;
    // kafkajs connects with net.connect({ host, port }); the broker's own address goes through
    // the forwarder (the bootstrap and the address the broker advertises are the same).
    (net as { connect: unknown }).connect = (options: net.NetConnectOpts, listener?: () => void) =>
      originalConnect(
        'port' in options && Number(options.port) === brokerPort
          ? { ...options, port: forwarderPort }
          : options,
        listener,
      );
  });

  afterAll(async () => {
    await Promise.allSettled(drivers.map((d) => d.close()));
    (net as { connect: unknown }).connect = originalConnect;
    const admin = kafkaClient().admin();
    await admin.connect();
    const { topics } = await admin.fetchTopicMetadata();
    const ours = topics.map((t) => t.name).filter((t) => t.startsWith(`prism.${namespace}.`));
    await admin.deleteTopics({ topics: ours }).catch(() => undefined);
    await admin.disconnect();
    await new Promise<void>((resolve) => forwarder.close(() => resolve()));
  });

  const message = (topic: string, text: string): Message => ({
    topic,
    payload: new TextEncoder().encode(text),
    headers: { 'prism-message-id': text },
  });

  async function driver(): Promise<KafkaDriver> {
    const d = createKafkaDriver({
      namespace,
      endpoint: `kafka://127.0.0.1:${brokerPort}`,
      kafka: { sessionTimeoutMs: 6000, rebalanceTimeoutMs: 3000, heartbeatIntervalMs: 500 },
    });
    drivers.push(d);
    await d.connect();
    return d;
  }

  /** Publishes `batch` while every Produce answer is lost: it must fail as BackendDownError. */
  async function publishLosingAnswers(d: KafkaDriver, batch: Message[]): Promise<void> {
    loseProduceAnswers = true;
    lostAnswers = 0;
    try {
      await expect(d.publishMany!(batch)).rejects.toBeInstanceOf(BackendDownError);
    } finally {
      loseProduceAnswers = false;
    }
    expect(lostAnswers).toBeGreaterThan(0);
  }

  /** Every payload the topic holds, in order, read by a new consumer group. */
  async function stored(d: KafkaDriver, topic: string, expected: number): Promise<string[]> {
    const admin = kafkaClient().admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(kafkaTopic(namespace, topic));
    await admin.disconnect();
    const count = offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    const payloads: string[] = [];
    const sub = await d.consume!(topic, uniqueName('audit'), async (delivery) => {
      payloads.push(new TextDecoder().decode(delivery.payload));
      await delivery.ack();
    });
    const started = Date.now();
    while (payloads.length < Math.max(count, expected) && Date.now() - started < 20_000)
      await new Promise((r) => setTimeout(r, 50));
    await sub.close();
    expect(count, 'records in the topic').toBe(expected);
    return payloads;
  }

  it('stores a batch once when its produce was stored but not answered and the caller sends it again', async () => {
    const d = await driver();
    const topic = 'retried';
    await d.publishMany!([message(topic, 'before')]);
    const batch = ['a0', 'a1', 'a2', 'a3', 'a4'].map((t) => message(topic, t));
    await publishLosingAnswers(d, batch);
    await d.publishMany!(batch); // the producer runner's retry: the same messages
    await d.publishMany!([message(topic, 'after')]);
    expect(await stored(d, topic, 7)).toEqual(['before', 'a0', 'a1', 'a2', 'a3', 'a4', 'after']);
  }, 60_000);

  it('stores a different batch sent after a produce whose answer was lost, beside the lost one', async () => {
    const d = await driver();
    const topic = 'different';
    await d.publishMany!([message(topic, 'before')]);
    await publishLosingAnswers(
      d,
      ['a0', 'a1', 'a2'].map((t) => message(topic, t)),
    );
    // As many messages as the lost batch: the broker would take it for that one under the same
    // producer id and sequence numbers, and store nothing.
    await d.publishMany!(['b0', 'b1', 'b2'].map((t) => message(topic, t)));
    expect(await stored(d, topic, 7)).toEqual(['before', 'a0', 'a1', 'a2', 'b0', 'b1', 'b2']);
  }, 60_000);
});
