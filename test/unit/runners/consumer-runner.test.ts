import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { AnyDriver, Delivery } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import type { ConsumerRunner } from '../../../src/runners/consumer/runner.js';
import type { ProducerRunner } from '../../../src/runners/producer/runner.js';
import type { DriverFactory } from '../../../src/runners/slots.js';
import type { ConsumerDelivery } from '../../../src/runners/types.js';
import { ALICE, buildRunner, bytes, eventually, memoryLogger, text, uniqueNamespace } from './helpers.js';

const dataDir = mkdtempSync(join(tmpdir(), 'prism-consumer-runner-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const TOPIC = 'orders.events';

async function producer(namespace: string): Promise<ProducerRunner> {
  const runner = buildRunner<ProducerRunner>({
    type: 'producer',
    namespace,
    slots: { sink: 'memstore' },
    settings: { topic: TOPIC },
  });
  await runner.start();
  cleanup.push(() => runner.stop());
  return runner;
}

interface ConsumerSetup {
  settings?: Record<string, unknown>;
  slots?: Record<string, string>;
  driverFactory?: DriverFactory;
  logger?: ReturnType<typeof memoryLogger>;
}

async function consumer(namespace: string, setup: ConsumerSetup = {}): Promise<ConsumerRunner> {
  const runner = buildRunner<ConsumerRunner>(
    {
      type: 'consumer',
      name: 'billing',
      namespace,
      slots: setup.slots ?? { source: 'memstore' },
      settings: { topic: TOPIC, consumerGroup: 'billing', ...setup.settings },
    },
    {
      dataDir,
      logger: setup.logger ?? memoryLogger(),
      consumer: { retry: { baseDelayMs: 1, maxDelayMs: 5 }, pubsubRedeliveryDelayMs: 5 },
      ...(setup.driverFactory ? { driverFactory: setup.driverFactory } : {}),
    },
  );
  await runner.start();
  cleanup.push(() => runner.stop());
  return runner;
}

/** Subscribes and records every delivery; `decide` acks by default. */
async function record(
  runner: ConsumerRunner,
  decide: (d: ConsumerDelivery) => Promise<void> = (d) => d.ack(),
): Promise<ConsumerDelivery[]> {
  const seen: ConsumerDelivery[] = [];
  await runner.subscribe({}, async (d) => {
    seen.push(d);
    await decide(d);
  });
  return seen;
}

/** What reached a memstore topic, read by a consumer group of its own. */
async function drain(namespace: string, topic: string): Promise<Delivery[]> {
  const driver = await createDriver('memstore', { endpoint: 'memory://', namespace });
  await driver.connect();
  const got: Delivery[] = [];
  const sub = await driver.consume!(topic, 'probe', async (d) => {
    got.push(d);
    await d.ack();
  });
  cleanup.push(async () => {
    await sub.close();
    await driver.close();
  });
  return got;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('consumer runner', () => {
  it('delivers the envelope the producer stamped', async () => {
    const ns = uniqueNamespace();
    const seen = await record(await consumer(ns));
    const published = await (
      await producer(ns)
    ).publish({ payload: bytes('hello'), correlationId: 'c-1', headers: { 'x-k': 'v' } }, ALICE);
    await eventually(() => seen.length === 1, 2000, 'the delivery');
    const { envelope } = seen[0]!;
    expect(envelope.messageId).toBe(published.messageId);
    expect(envelope.topic).toBe(TOPIC);
    expect(envelope.namespace).toBe(ns);
    expect(envelope.correlationId).toBe('c-1');
    expect(envelope.session?.subject).toBe('user:alice');
    expect(envelope.headers).toEqual({ 'x-k': 'v' });
    expect(envelope.attempt).toBe(1);
    expect(text(envelope.payload)).toBe('hello');
  });

  it('gives each message to one consumer of a group, and every message to each group', async () => {
    const ns = uniqueNamespace();
    const a = await record(await consumer(ns));
    const b = await record(await consumer(ns));
    const other = buildRunner<ConsumerRunner>({
      type: 'consumer',
      name: 'audit',
      namespace: ns,
      slots: { source: 'memstore' },
      settings: { topic: TOPIC, consumerGroup: 'audit' },
    });
    await other.start();
    cleanup.push(() => other.stop());
    const c = await record(other);

    const p = await producer(ns);
    for (let i = 0; i < 6; i++) await p.publish({ payload: bytes(String(i)) }, ALICE);
    await eventually(() => a.length + b.length === 6 && c.length === 6, 2000, 'six deliveries per group');
    const billing = [...a, ...b].map((d) => text(d.envelope.payload)).sort();
    expect(billing).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    expect(c.map((d) => text(d.envelope.payload))).toEqual(['0', '1', '2', '3', '4', '5']);
  });

  it('redelivers a nacked message with attempt 2', async () => {
    const ns = uniqueNamespace();
    const seen = await record(await consumer(ns), (d) =>
      d.envelope.attempt === 1 ? d.nack('not yet') : d.ack(),
    );
    await (await producer(ns)).publish({ payload: bytes('retry me') }, ALICE);
    await eventually(() => seen.length === 2, 2000, 'the redelivery');
    expect(seen.map((d) => d.envelope.attempt)).toEqual([1, 2]);
    expect(seen[1]!.envelope.messageId).toBe(seen[0]!.envelope.messageId);
    await sleep(50);
    expect(seen).toHaveLength(2);
  });

  it('treats a handler that throws as a nack', async () => {
    const ns = uniqueNamespace();
    const seen = await record(await consumer(ns), async (d) => {
      if (d.envelope.attempt === 1) throw new Error('boom');
      await d.ack();
    });
    await (await producer(ns)).publish({ payload: bytes('x') }, ALICE);
    await eventually(() => seen.length === 2, 2000, 'the redelivery');
    expect(seen[1]!.envelope.attempt).toBe(2);
  });

  it('redelivers a message not acknowledged within ack_timeout', async () => {
    const ns = uniqueNamespace();
    const seen = await record(await consumer(ns, { settings: { ackTimeout: '50ms' } }), async (d) => {
      if (d.envelope.attempt > 1) await d.ack();
    });
    await (await producer(ns)).publish({ payload: bytes('slow') }, ALICE);
    await eventually(() => seen.length === 2, 2000, 'the redelivery after ack_timeout');
    expect(seen[1]!.envelope.attempt).toBe(2);
  });

  it('moves a message to the dead-letter slot after max_retries failed attempts, with payload, headers and reason', async () => {
    const ns = uniqueNamespace();
    const runner = await consumer(ns, {
      settings: { maxRetries: 3 },
      slots: { source: 'memstore', 'dead-letter': 'memstore' },
    });
    const seen = await record(runner, (d) => d.nack(`attempt ${d.envelope.attempt} failed`));
    const published = await (
      await producer(ns)
    ).publish({ payload: bytes('poison'), headers: { 'x-order': '9' }, contentType: 'text/plain' }, ALICE);
    const dead = await drain(ns, `${TOPIC}.dead-letter`);
    await eventually(() => dead.length === 1, 2000, 'the dead letter');
    expect(seen.map((d) => d.envelope.attempt)).toEqual([1, 2, 3]);
    const letter = dead[0]!;
    expect(text(letter.payload)).toBe('poison');
    expect(letter.headers).toMatchObject({
      'prism-message-id': published.messageId,
      'prism-namespace': ns,
      'prism-content-type': 'text/plain',
      'prism-session-subject': 'user:alice',
      'x-order': '9',
      'prism-dead-letter-reason': 'attempt 3 failed',
      'prism-original-topic': TOPIC,
      'prism-attempts': '3',
    });
    await sleep(50);
    expect(seen).toHaveLength(3);
  });

  it('moves a dead letter to dead_letter_topic when the pattern sets one, not to <topic>.dead-letter', async () => {
    const ns = uniqueNamespace();
    const runner = await consumer(ns, {
      settings: { maxRetries: 1, deadLetterTopic: 'orders.failed' },
      slots: { source: 'memstore', 'dead-letter': 'memstore' },
    });
    await record(runner, (d) => d.nack('refused'));
    const failed = await drain(ns, 'orders.failed');
    const defaultTopic = await drain(ns, `${TOPIC}.dead-letter`);
    const published = await (await producer(ns)).publish({ payload: bytes('poison') }, ALICE);
    await eventually(() => failed.length === 1, 2000, 'the dead letter on orders.failed');
    expect(text(failed[0]!.payload)).toBe('poison');
    expect(failed[0]!.headers).toMatchObject({
      'prism-message-id': published.messageId,
      'prism-dead-letter-reason': 'refused',
      'prism-original-topic': TOPIC,
      'prism-attempts': '1',
    });
    await sleep(50);
    expect(defaultTopic).toHaveLength(0);
  });

  it('without a dead-letter slot, logs the message and acknowledges it after max_retries', async () => {
    const ns = uniqueNamespace();
    const logger = memoryLogger();
    const seen = await record(await consumer(ns, { settings: { maxRetries: 2 }, logger }), (d) =>
      d.nack('bad'),
    );
    const published = await (await producer(ns)).publish({ payload: bytes('drop') }, ALICE);
    await eventually(() => logger.entries.find((e) => e.level === 'warn'), 2000, 'the warning');
    await sleep(50);
    expect(seen.map((d) => d.envelope.attempt)).toEqual([1, 2]);
    expect(logger.entries.find((e) => e.level === 'warn')?.obj).toMatchObject({
      messageId: published.messageId,
      attempts: 2,
      reason: 'bad',
    });
  });

  it('dead-letters a message delivered max_retries times without an ack, without delivering it again', async () => {
    const ns = uniqueNamespace();
    const runner = await consumer(ns, {
      settings: { maxRetries: 2, ackTimeout: '30ms' },
      slots: { source: 'memstore', 'dead-letter': 'memstore' },
    });
    const seen = await record(runner, async () => undefined);
    await (await producer(ns)).publish({ payload: bytes('ignored') }, ALICE);
    const dead = await drain(ns, `${TOPIC}.dead-letter`);
    await eventually(() => dead.length === 1, 2000, 'the dead letter');
    expect(seen).toHaveLength(2);
    expect(dead[0]!.headers['prism-attempts']).toBe('2');
    expect(dead[0]!.headers['prism-dead-letter-reason']).toMatch(/^not acknowledged after 2 deliveries/);
  });

  it('keeps counting attempts in the state slot when the backend starts again at 1', async () => {
    const ns = uniqueNamespace();
    // Like Kafka after a restart: the driver's attempt count is always 1.
    const forgetful: DriverFactory = async (backend, options, slot) => {
      const driver = await createDriver(backend, options);
      if (slot.slot !== 'source') return driver;
      const view = Object.create(driver) as AnyDriver;
      view.consume = (topic, group, handler, opts) =>
        driver.consume!(topic, group, (d) => handler({ ...d, attempt: 1 }), opts);
      return view;
    };
    const runner = await consumer(ns, {
      settings: { maxRetries: 3 },
      slots: { source: 'memstore', state: 'sqlite', 'dead-letter': 'memstore' },
      driverFactory: forgetful,
    });
    const seen = await record(runner, (d) => d.nack('no'));
    await (await producer(ns)).publish({ payload: bytes('x') }, ALICE);
    const dead = await drain(ns, `${TOPIC}.dead-letter`);
    await eventually(() => dead.length === 1, 2000, 'the dead letter');
    expect(seen.map((d) => d.envelope.attempt)).toEqual([1, 2, 3]);
  });

  it('after a restart, acks and skips a redelivery of a message it had already acknowledged', async () => {
    const ns = uniqueNamespace();
    // The first runner's acks never reach the backend, as if it crashed right after acking.
    const lostAcks: DriverFactory = async (backend, options, slot) => {
      const driver = await createDriver(backend, options);
      if (slot.slot !== 'source') return driver;
      const view = Object.create(driver) as AnyDriver;
      view.consume = (topic, group, handler, opts) =>
        driver.consume!(topic, group, (d) => handler({ ...d, ack: async () => undefined }), opts);
      return view;
    };
    const slots = { source: 'memstore', state: 'sqlite' };
    const first = await consumer(ns, { slots, driverFactory: lostAcks });
    const firstSeen = await record(first);
    const p = await producer(ns);
    await p.publish({ payload: bytes('once') }, ALICE);
    await eventually(() => firstSeen.length === 1, 2000, 'the first delivery');
    await first.stop();

    const second = await consumer(ns, { slots });
    const secondSeen = await record(second);
    await p.publish({ payload: bytes('new') }, ALICE);
    await eventually(() => secondSeen.length === 1, 2000, 'the new message');
    await sleep(50);
    expect(secondSeen.map((d) => text(d.envelope.payload))).toEqual(['new']);

    // The skipped redelivery was acknowledged: a third consumer gets nothing old either.
    await second.stop();
    const third = await consumer(ns);
    const thirdSeen = await record(third);
    await sleep(50);
    expect(thirdSeen).toHaveLength(0);
  });

  it('delivers a message without prism headers from a plain producer', async () => {
    const ns = uniqueNamespace();
    const seen = await record(await consumer(ns, { slots: { source: 'memstore', state: 'memstore' } }));
    const plain = await createDriver('memstore', { endpoint: 'memory://', namespace: ns });
    await plain.enqueue!({ topic: TOPIC, payload: bytes('raw'), headers: { legacy: 'yes' } });
    await plain.close();
    await eventually(() => seen.length === 1, 2000, 'the plain message');
    expect(text(seen[0]!.envelope.payload)).toBe('raw');
    expect(seen[0]!.envelope.messageId).toBe('');
    expect(seen[0]!.envelope.headers).toEqual({ legacy: 'yes' });
  });

  it('over a pub/sub-only source, redelivers a nacked message itself and dead-letters after max_retries', async () => {
    const ns = uniqueNamespace();
    const pubsubOnly: DriverFactory = async (backend, options, slot) => {
      const driver = await createDriver(backend, options);
      if (slot.slot !== 'source') return driver;
      const view = Object.create(driver) as AnyDriver;
      Object.defineProperty(view, 'capabilities', { value: new Set(['pubsub']) });
      Object.defineProperty(view, 'consume', { value: undefined });
      return view;
    };
    const runner = await consumer(ns, {
      settings: { maxRetries: 2 },
      slots: { source: 'memstore', 'dead-letter': 'memstore' },
      driverFactory: pubsubOnly,
    });
    const seen = await record(runner, (d) => d.nack('nope'));
    const sink = await createDriver('memstore', { endpoint: 'memory://', namespace: ns });
    await sink.publish!({ topic: TOPIC, payload: bytes('live'), headers: {} });
    await sink.close();
    const dead = await drain(ns, `${TOPIC}.dead-letter`);
    await eventually(() => dead.length === 1, 2000, 'the dead letter');
    expect(seen.map((d) => d.envelope.attempt)).toEqual([1, 2]);
  });
});

describe('slot capabilities', () => {
  it('refuses at start a keyvalue store bound to nats, naming namespace, pattern, slot and capabilities', async () => {
    const runner = buildRunner({
      type: 'keyvalue',
      name: 'cache',
      namespace: 'orders',
      slots: { store: 'nats' },
    });
    await expect(runner.start()).rejects.toMatchObject({
      code: 'E_CAPABILITY_MISSING',
      message:
        'namespace orders, pattern cache: slot store is bound to nats, which implements pubsub+queue; the slot needs keyvalue',
    });
    await expect(runner.health()).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });

  it('refuses a dead-letter slot on a backend without a queue before connecting anything', async () => {
    const runner = buildRunner({
      type: 'consumer',
      name: 'billing',
      namespace: 'orders',
      slots: { source: 'memstore', 'dead-letter': 'sqlite' },
      settings: { topic: 't', consumerGroup: 'g' },
    });
    await expect(runner.start()).rejects.toMatchObject({
      code: 'E_CAPABILITY_MISSING',
      message: expect.stringContaining(
        'slot dead-letter is bound to sqlite, which implements keyvalue+ttl+scan',
      ),
    });
  });

  it('refuses a session store without ttl', async () => {
    const noTtl: DriverFactory = async (backend, options) => {
      const driver = await createDriver(backend, options);
      const view = Object.create(driver) as AnyDriver;
      Object.defineProperty(view, 'capabilities', { value: new Set(['keyvalue']) });
      return view;
    };
    const runner = buildRunner(
      { type: 'session-manager', name: 'sessions', namespace: 'orders', slots: { store: 'memstore' } },
      { driverFactory: noTtl },
    );
    await expect(runner.start()).rejects.toMatchObject({
      code: 'E_CAPABILITY_MISSING',
      message: expect.stringContaining('the slot needs keyvalue+ttl'),
    });
  });

  it('refuses a missing required slot and an undeclared slot when built', () => {
    expect(() => buildRunner({ type: 'keyvalue', slots: {} })).toThrow(
      expect.objectContaining({
        code: 'E_INVALID_ARGUMENT',
        message: expect.stringContaining('required slot store'),
      }),
    );
    expect(() => buildRunner({ type: 'keyvalue', slots: { store: 'memstore', cache: 'memstore' } })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }),
    );
  });

  it('closes the drivers it connected, in reverse order, when a later slot fails to connect', async () => {
    const events: string[] = [];
    const tracing: DriverFactory = async (backend, options, slot) => {
      const driver = await createDriver(backend, options);
      const view = Object.create(driver) as AnyDriver;
      view.connect = async () => {
        if (slot.slot === 'dead-letter') throw new Error('refused');
        events.push(`connect ${slot.slot}`);
        await driver.connect();
      };
      view.close = async () => {
        events.push(`close ${slot.slot}`);
        await driver.close();
      };
      return view;
    };
    const runner = buildRunner(
      {
        type: 'consumer',
        slots: { source: 'memstore', state: 'memstore', 'dead-letter': 'memstore' },
        settings: { topic: 't', consumerGroup: 'g' },
      },
      { driverFactory: tracing },
    );
    await expect(runner.start()).rejects.toThrow('refused');
    expect(events).toEqual([
      'connect source',
      'connect state',
      'close dead-letter',
      'close state',
      'close source',
    ]);
  });
});
