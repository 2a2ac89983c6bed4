import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery, Message } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import type { ConsumerRunner } from '../../../src/runners/consumer/runner.js';
import {
  PayloadPipeline,
  type PayloadStage,
  type SettledOutcome,
  type StageContext,
} from '../../../src/runners/payload/stages.js';
import type { ProducerRunner } from '../../../src/runners/producer/runner.js';
import type { ConsumerDelivery } from '../../../src/runners/types.js';
import { ALICE, buildRunner, bytes, eventually, memoryLogger, text, uniqueNamespace } from './helpers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const TOPIC = 'orders.events';

/** Seals by reversing the payload and marking it with a header; opens only what it marked. */
function reversing(name: string, seen: StageContext[] = []): PayloadStage {
  const header = `prism-test-${name}`;
  return {
    name,
    seal: async (message: Message, context: StageContext) => {
      seen.push(context);
      return {
        ...message,
        payload: Uint8Array.from(message.payload).reverse(),
        headers: { ...message.headers, [header]: String(Object.keys(message.headers).length) },
      };
    },
    open: async (message: Message) => {
      if (!(header in message.headers)) return message;
      const { [header]: _marked, ...headers } = message.headers;
      return { ...message, payload: Uint8Array.from(message.payload).reverse(), headers };
    },
  };
}

async function producer(ns: string, payload: PayloadPipeline): Promise<ProducerRunner> {
  const runner = buildRunner<ProducerRunner>(
    { type: 'producer', namespace: ns, slots: { sink: 'memstore' }, settings: { topic: TOPIC } },
    { producer: { payload } },
  );
  await runner.start();
  cleanup.push(() => runner.stop());
  return runner;
}

async function consumer(ns: string, payload: PayloadPipeline, maxRetries = 3): Promise<ConsumerDelivery[]> {
  const runner = buildRunner<ConsumerRunner>(
    {
      type: 'consumer',
      name: 'billing',
      namespace: ns,
      slots: { source: 'memstore', 'dead-letter': 'memstore' },
      settings: { topic: TOPIC, consumerGroup: 'billing', maxRetries },
    },
    {
      logger: memoryLogger(),
      consumer: { payload, retry: { baseDelayMs: 1, maxDelayMs: 5 }, pubsubRedeliveryDelayMs: 5 },
    },
  );
  await runner.start();
  cleanup.push(() => runner.stop());
  const seen: ConsumerDelivery[] = [];
  await runner.subscribe({}, async (d) => {
    seen.push(d);
    await d.ack();
  });
  return seen;
}

/** What reached a memstore topic, as a plain consumer of the backend sees it. */
async function drain(ns: string, topic: string): Promise<Delivery[]> {
  const driver = await createDriver('memstore', { endpoint: 'memory://', namespace: ns });
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

describe('payload stages', () => {
  it('seal in order on publish and open in reverse order on delivery, so the subscriber gets what was published', async () => {
    const ns = uniqueNamespace();
    const contexts: StageContext[] = [];
    const stages = () => new PayloadPipeline([reversing('first', contexts), reversing('second')]);
    const raw = await drain(ns, TOPIC);
    const seen = await consumer(ns, stages());
    await (await producer(ns, stages())).publish({ payload: bytes('abc'), headers: { 'x-k': 'v' } }, ALICE);

    await eventually(() => seen.length === 1 && raw.length === 1, 2000, 'the delivery');
    // Reversed twice on the wire; the second stage saw the first stage's header.
    expect(text(raw[0]!.payload)).toBe('abc');
    expect(raw[0]!.headers['prism-test-first']).toBeDefined();
    expect(Number(raw[0]!.headers['prism-test-second'])).toBe(
      Number(raw[0]!.headers['prism-test-first']) + 1,
    );
    expect(text(seen[0]!.envelope.payload)).toBe('abc');
    expect(seen[0]!.envelope.headers).toEqual({ 'x-k': 'v' });
    expect(contexts).toEqual([{ namespace: ns, pattern: 'producer', topic: TOPIC, session: ALICE }]);
  });

  it('tells every stage, after the backend took the ack, the message as delivered, its group and the outcome', async () => {
    const ns = uniqueNamespace();
    const settled: Array<{
      stage: string;
      headers: Message['headers'];
      context: StageContext;
      outcome: SettledOutcome;
    }> = [];
    const recording = (name: string): PayloadStage => ({
      ...reversing(name),
      settled: async (message, context, outcome) => {
        settled.push({ stage: name, headers: message.headers, context, outcome });
      },
    });
    const seen = await consumer(ns, new PayloadPipeline([recording('first'), recording('second')]));
    await (
      await producer(ns, new PayloadPipeline([reversing('first'), reversing('second')]))
    ).publish({ payload: bytes('abc') }, ALICE);

    await eventually(() => settled.length === 2, 2000, 'the settled calls');
    expect(seen).toHaveLength(1);
    // In `open` order (last stage first); the message still carries what the stages sealed.
    expect(settled.map((s) => [s.stage, s.outcome])).toEqual([
      ['second', 'acked'],
      ['first', 'acked'],
    ]);
    expect(settled[0]!.headers['prism-test-first']).toBeDefined();
    expect(settled[0]!.headers['prism-test-second']).toBeDefined();
    expect(settled[0]!.headers['prism-message-id']).toBe(seen[0]!.envelope.messageId);
    expect(settled[0]!.context).toEqual({
      namespace: ns,
      pattern: 'billing',
      topic: TOPIC,
      group: 'billing',
    });
  });

  it('keeps an acknowledgement whose settled hook fails, and tells the other stages', async () => {
    const ns = uniqueNamespace();
    const outcomes: SettledOutcome[] = [];
    const failing: PayloadStage = {
      ...reversing('failing'),
      settled: () => Promise.reject(new Error('store down')),
    };
    const recording: PayloadStage = {
      ...reversing('recording'),
      settled: async (_m, _c, outcome) => void outcomes.push(outcome),
    };
    const seen = await consumer(ns, new PayloadPipeline([recording, failing]));
    const runner = await producer(ns, new PayloadPipeline([reversing('recording'), reversing('failing')]));
    await runner.publish({ payload: bytes('one') }, ALICE);
    await runner.publish({ payload: bytes('two') }, ALICE);

    await eventually(() => outcomes.length === 2, 2000, 'both settled calls');
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Acknowledged once each: nothing was redelivered.
    expect(seen.map((d) => text(d.envelope.payload))).toEqual(['one', 'two']);
  });

  it('fails a publish whose seal fails, and sends nothing', async () => {
    const ns = uniqueNamespace();
    const refusing: PayloadStage = {
      name: 'refusing',
      seal: () => Promise.reject(new Error('no key')),
      open: async (m) => m,
    };
    const raw = await drain(ns, TOPIC);
    const runner = await producer(ns, new PayloadPipeline([refusing]));
    await expect(runner.publish({ payload: bytes('x') }, ALICE)).rejects.toThrow('no key');
    await runner.publish({ payload: bytes('y') }, ALICE).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(raw).toEqual([]);
  });

  it('dead-letters a message whose payload cannot be opened after max_retries, with the payload as it travelled', async () => {
    const ns = uniqueNamespace();
    const outcomes: SettledOutcome[] = [];
    const failingOpen: PayloadStage = {
      name: 'failing',
      seal: async (m) => ({ ...m, headers: { ...m.headers, 'prism-test-sealed': '1' } }),
      open: () => Promise.reject(new Error('checksum mismatch')),
      settled: async (_m, _c, outcome) => void outcomes.push(outcome),
    };
    const dead = await drain(ns, `${TOPIC}.dead-letter`);
    const seen = await consumer(ns, new PayloadPipeline([failingOpen]), 2);
    await (await producer(ns, new PayloadPipeline([failingOpen]))).publish({ payload: bytes('p') }, ALICE);

    await eventually(() => dead.length === 1, 3000, 'the dead letter');
    expect(seen).toEqual([]);
    expect(text(dead[0]!.payload)).toBe('p');
    expect(dead[0]!.headers['prism-test-sealed']).toBe('1');
    expect(dead[0]!.headers['prism-dead-letter-reason']).toBe(
      'payload could not be opened: checksum mismatch',
    );
    expect(dead[0]!.headers['prism-attempts']).toBe('2');
    await eventually(() => outcomes.length === 1, 2000, 'the settled call');
    expect(outcomes).toEqual(['dead-lettered']);
  });
});
