import { create } from '@bufbuild/protobuf';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyDriver, Delivery, DriverOptions } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import { TraceContextSchema } from '../../../src/gen/prism/data/v1/envelope_pb.js';
import { decodeEnvelope } from '../../../src/runners/envelope.js';
import { newPublishLane, type ProducerRunner } from '../../../src/runners/producer/runner.js';
import type { DriverFactory, SlotContext } from '../../../src/runners/slots.js';
import { isUuidV7, uuidv7Time } from '../../../src/runners/uuid.js';
import {
  ALICE,
  buildRunner,
  bytes,
  eventually,
  flakyFactory,
  memoryLogger,
  text,
  uniqueNamespace,
} from './helpers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const FAST_RETRY = { baseDelayMs: 1, maxDelayMs: 5 };

async function producer(
  namespace: string,
  settings: Record<string, unknown> = {},
  slots: Record<string, string> = { sink: 'memstore' },
  driverFactory?: DriverFactory,
): Promise<ProducerRunner> {
  const runner = buildRunner<ProducerRunner>(
    { type: 'producer', namespace, slots, settings: { topic: 'orders.events', ...settings } },
    { logger: memoryLogger(), producer: { retry: FAST_RETRY }, ...(driverFactory ? { driverFactory } : {}) },
  );
  await runner.start();
  cleanup.push(() => runner.stop());
  return runner;
}

/** Reads what reached a memstore topic, as a consumer group of its own. */
async function received(namespace: string, topic = 'orders.events'): Promise<Delivery[]> {
  const driver = await createDriver('memstore', { endpoint: 'memory://', namespace });
  await driver.connect();
  const got: Delivery[] = [];
  const sub = await driver.consume!(topic, `probe-${got.length}-${Math.random()}`, async (d) => {
    got.push(d);
    await d.ack();
  });
  cleanup.push(async () => {
    await sub.close();
    await driver.close();
  });
  return got;
}

/** A sink factory that records the size and time of every batch the runner sends. */
function batchRecorder(sent: Array<{ size: number; at: number }>): DriverFactory {
  return async (backend: string, options: DriverOptions, context: SlotContext) => {
    const driver = await createDriver(backend, options);
    if (context.slot !== 'sink') return driver;
    const wrapped = Object.create(driver) as AnyDriver;
    wrapped.enqueueMany = (messages) => {
      sent.push({ size: messages.length, at: Date.now() });
      return driver.enqueueMany!(messages);
    };
    return wrapped;
  };
}

describe('producer runner', () => {
  it('stamps the envelope: UUIDv7 id, topic, namespace, publish time, session, trace and headers', async () => {
    const ns = uniqueNamespace();
    const runner = await producer(ns);
    const before = Date.now();
    const result = await runner.publish(
      {
        payload: bytes('{"order":1}'),
        contentType: 'application/json',
        correlationId: 'req-1',
        headers: { 'x-region': 'eu' },
        trace: create(TraceContextSchema, {
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          tracestate: 'v=1',
        }),
      },
      ALICE,
    );
    expect(result.duplicate).toBe(false);
    expect(isUuidV7(result.messageId)).toBe(true);
    expect(result.publishedAtMs).toBeGreaterThanOrEqual(before);
    expect(uuidv7Time(result.messageId)).toBe(result.publishedAtMs);

    const got = await received(ns);
    const [delivery] = await eventually(() => got.length === 1 && got, 2000, 'the message');
    const envelope = decodeEnvelope(delivery!);
    expect(envelope.messageId).toBe(result.messageId);
    expect(envelope.topic).toBe('orders.events');
    expect(envelope.namespace).toBe(ns);
    expect(envelope.publishedAtMs).toBe(BigInt(result.publishedAtMs));
    expect(envelope.contentType).toBe('application/json');
    expect(envelope.correlationId).toBe('req-1');
    expect(envelope.session?.subject).toBe('user:alice');
    expect(envelope.session?.tenant).toBe('acme');
    expect(envelope.session?.roles).toEqual(['writer', 'ops,oncall']);
    expect(envelope.trace?.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(envelope.trace?.tracestate).toBe('v=1');
    expect(envelope.headers).toEqual({ 'x-region': 'eu' });
    expect(text(envelope.payload)).toBe('{"order":1}');
  });

  it('publishes to the topic the caller names instead of the configured one', async () => {
    const ns = uniqueNamespace();
    const runner = await producer(ns);
    await runner.publish({ topic: 'orders.audit', payload: bytes('a') }, ALICE);
    const got = await received(ns, 'orders.audit');
    await eventually(() => got.length === 1, 2000, 'the message');
    expect(got[0]!.topic).toBe('orders.audit');
  });

  it('rejects a custom header with the reserved prism- prefix and publishes nothing', async () => {
    const ns = uniqueNamespace();
    const runner = await producer(ns);
    await expect(
      runner.publish({ payload: bytes('x'), headers: { 'prism-message-id': 'forged' } }, ALICE),
    ).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    const got = await received(ns);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(got).toHaveLength(0);
  });

  it('refuses a payload above max_message_size with E_PAYLOAD_TOO_LARGE and publishes nothing', async () => {
    const ns = uniqueNamespace();
    const runner = await producer(ns, { maxMessageSize: '1KiB' });
    await runner.publish({ payload: new Uint8Array(1024) }, ALICE);
    await expect(runner.publish({ payload: new Uint8Array(1025) }, ALICE)).rejects.toMatchObject({
      code: 'E_PAYLOAD_TOO_LARGE',
      message: 'payload is 1025 bytes; the limit is 1KiB (1024 bytes, setting max_message_size)',
    });
    const got = await received(ns);
    await eventually(() => got.length === 1, 2000, 'the message at the limit');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(got.map((d) => d.payload.byteLength)).toEqual([1024]);
  });

  it('retries a publish that fails with E_BACKEND_DOWN and succeeds within max_retries', async () => {
    const ns = uniqueNamespace();
    const flaky = flakyFactory('sink', ['enqueue'], 2);
    const runner = await producer(ns, { maxRetries: 3 }, undefined, flaky.factory);
    await runner.publish({ payload: bytes('eventually') }, ALICE);
    expect(flaky.calls.enqueue).toBe(3);
    const got = await received(ns);
    await eventually(() => got.length === 1, 2000, 'the message');
    expect(text(got[0]!.payload)).toBe('eventually');
  });

  it('gives up after max_retries retries with E_BACKEND_DOWN', async () => {
    const ns = uniqueNamespace();
    const flaky = flakyFactory('sink', ['enqueue'], 10);
    const runner = await producer(ns, { maxRetries: 2 }, undefined, flaky.factory);
    await expect(runner.publish({ payload: bytes('lost') }, ALICE)).rejects.toMatchObject({
      code: 'E_BACKEND_DOWN',
    });
    expect(flaky.calls.enqueue).toBe(3);
  });

  it('uses PubSub.publish when the sink has no queue', async () => {
    const ns = uniqueNamespace();
    const pubsubOnly: DriverFactory = async (backend, options) => {
      const driver = await createDriver(backend, options);
      const view = Object.create(driver) as AnyDriver;
      Object.defineProperty(view, 'capabilities', { value: new Set(['pubsub']) });
      Object.defineProperty(view, 'enqueue', { value: undefined });
      return view;
    };
    const runner = await producer(ns, {}, undefined, pubsubOnly);
    const listener = await createDriver('memstore', { endpoint: 'memory://', namespace: ns });
    const heard: string[] = [];
    const sub = await listener.subscribe!('orders.events', (m) => {
      heard.push(text(m.payload)!);
    });
    cleanup.push(async () => {
      await sub.close();
      await listener.close();
    });
    await runner.publish({ payload: bytes('live') }, ALICE);
    await eventually(() => heard.length === 1, 2000, 'the pub/sub message');
    expect(heard).toEqual(['live']);
  });

  describe('batching', () => {
    it('holds publishes until the batch is full, then sends them as one backend request in order', async () => {
      const ns = uniqueNamespace();
      const counting = flakyFactory('sink', ['enqueue', 'enqueueMany'], 0);
      const runner = await producer(ns, { batchSize: 3, batchInterval: '1h' }, undefined, counting.factory);
      const settled: number[] = [];
      const first = runner.publish({ payload: bytes('1') }, ALICE).then(() => settled.push(1));
      const second = runner.publish({ payload: bytes('2') }, ALICE).then(() => settled.push(2));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(counting.calls.enqueueMany ?? 0).toBe(0);
      expect(settled).toEqual([]);

      await runner.publish({ payload: bytes('3') }, ALICE);
      await Promise.all([first, second]);
      expect(counting.calls).toEqual({ enqueueMany: 1 });
      const got = await received(ns);
      await eventually(() => got.length === 3, 2000, 'three messages');
      expect(got.map((d) => text(d.payload))).toEqual(['1', '2', '3']);
    });

    it('sends batch_size messages per backend request, and the rest batch_interval after its first message', async () => {
      const ns = uniqueNamespace();
      const sent: Array<{ size: number; at: number }> = [];
      const recording = batchRecorder(sent);
      const runner = await producer(ns, { batchSize: 4, batchInterval: '150ms' }, undefined, recording);
      const started = Date.now();
      const results = await runner.publishBatch(
        Array.from({ length: 10 }, (_, i) => ({ payload: bytes(`m${i}`) })),
        ALICE,
      );
      expect(results).toHaveLength(10);
      expect(sent.map((b) => b.size)).toEqual([4, 4, 2]);
      expect(sent[0]!.at - started).toBeLessThan(100);
      expect(sent[1]!.at - started).toBeLessThan(100);
      expect(sent[2]!.at - started).toBeGreaterThanOrEqual(145);
      const got = await received(ns);
      await eventually(() => got.length === 10, 2000, 'ten messages');
      expect(got.map((d) => text(d.payload))).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    });

    it('sends each message alone with batch_size 1, in order on one lane', async () => {
      const ns = uniqueNamespace();
      const sent: Array<{ size: number; at: number }> = [];
      const runner = await producer(ns, {}, undefined, batchRecorder(sent));
      const lane = newPublishLane();
      await Promise.all(['a', 'b', 'c'].map((p) => runner.publish({ payload: bytes(p) }, ALICE, lane)));
      expect(sent).toEqual([]);
      const got = await received(ns);
      await eventually(() => got.length === 3, 2000, 'three messages');
      expect(got.map((d) => text(d.payload))).toEqual(['a', 'b', 'c']);
    });

    it('retries a batch as a whole while the backend is down, and publishes it once', async () => {
      const ns = uniqueNamespace();
      const flaky = flakyFactory('sink', ['enqueueMany'], 2);
      const runner = await producer(ns, { batchSize: 3, batchInterval: '1h' }, undefined, flaky.factory);
      await runner.publishBatch(
        ['x', 'y', 'z'].map((p) => ({ payload: bytes(p) })),
        ALICE,
      );
      expect(flaky.calls).toEqual({ enqueueMany: 3 });
      const got = await received(ns);
      await eventually(() => got.length === 3, 2000, 'three messages');
      expect(got.map((d) => text(d.payload))).toEqual(['x', 'y', 'z']);
    });

    it('sends a partial batch after batch_interval', async () => {
      const ns = uniqueNamespace();
      const runner = await producer(ns, { batchSize: 100, batchInterval: '30ms' });
      const started = Date.now();
      await runner.publish({ payload: bytes('alone') }, ALICE);
      expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    });

    it('flushes pending batches on stop', async () => {
      const ns = uniqueNamespace();
      const runner = buildRunner<ProducerRunner>({
        type: 'producer',
        namespace: ns,
        slots: { sink: 'memstore' },
        settings: { topic: 'orders.events', batchSize: 10, batchInterval: '1h' },
      });
      await runner.start();
      const pending = [
        runner.publish({ payload: bytes('a') }, ALICE),
        runner.publish({ payload: bytes('b') }, ALICE),
      ];
      await runner.stop();
      const results = await Promise.all(pending);
      expect(results.map((r) => r.duplicate)).toEqual([false, false]);
      const got = await received(ns);
      await eventually(() => got.length === 2, 2000, 'both messages');
      expect(got.map((d) => text(d.payload))).toEqual(['a', 'b']);
      await expect(runner.publish({ payload: bytes('late') }, ALICE)).rejects.toMatchObject({
        code: 'E_UNAVAILABLE',
      });
    });
  });

  describe('deduplication', () => {
    it('publishes a message id once within dedup_window and answers the repeat as duplicate', async () => {
      const ns = uniqueNamespace();
      const runner = await producer(ns, { dedupWindow: '5m' }, { sink: 'memstore', state: 'memstore' });
      const first = await runner.publish({ payload: bytes('once'), messageId: 'order-17' }, ALICE);
      const again = await runner.publish({ payload: bytes('once'), messageId: 'order-17' }, ALICE);
      expect(first).toMatchObject({ messageId: 'order-17', duplicate: false });
      expect(again).toEqual({ messageId: 'order-17', publishedAtMs: first.publishedAtMs, duplicate: true });
      const got = await received(ns);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(got).toHaveLength(1);
    });

    it('catches duplicates that arrive concurrently', async () => {
      const ns = uniqueNamespace();
      const runner = await producer(ns, { dedupWindow: '5m' }, { sink: 'memstore', state: 'memstore' });
      const results = await Promise.all(
        Array.from({ length: 5 }, () => runner.publish({ payload: bytes('x'), messageId: 'same' }, ALICE)),
      );
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      const got = await received(ns);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(got).toHaveLength(1);
    });

    it('publishes the id again once the window has passed', async () => {
      const ns = uniqueNamespace();
      const runner = await producer(ns, { dedupWindow: '50ms' }, { sink: 'memstore', state: 'memstore' });
      await runner.publish({ payload: bytes('1'), messageId: 'm' }, ALICE);
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect((await runner.publish({ payload: bytes('2'), messageId: 'm' }, ALICE)).duplicate).toBe(false);
    });

    it('forgets the id of a publish that failed, so the caller can retry it', async () => {
      const ns = uniqueNamespace();
      const flaky = flakyFactory('sink', ['enqueue'], 1);
      const runner = await producer(
        ns,
        { dedupWindow: '5m', maxRetries: 0 },
        { sink: 'memstore', state: 'memstore' },
        flaky.factory,
      );
      await expect(
        runner.publish({ payload: bytes('x'), messageId: 'retry-me' }, ALICE),
      ).rejects.toMatchObject({
        code: 'E_BACKEND_DOWN',
      });
      expect((await runner.publish({ payload: bytes('x'), messageId: 'retry-me' }, ALICE)).duplicate).toBe(
        false,
      );
    });

    it('refuses dedup_window without a state slot', () => {
      expect(() =>
        buildRunner({
          type: 'producer',
          slots: { sink: 'memstore' },
          settings: { topic: 't', dedupWindow: '5m' },
        }),
      ).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
    });
  });
});
