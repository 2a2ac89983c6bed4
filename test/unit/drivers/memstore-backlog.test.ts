/**
 * Memstore's queue with a backlog far larger than a consumer's prefetch (the shared contract is
 * test/conformance/messaging.test.ts, whose queues stay small): the waiting entries are taken from
 * a head index and compacted as it advances, and a redelivery goes back in sequence order, so
 * every message comes once, in order, whatever the backlog.
 */
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import type { Delivery } from '../../../src/drivers/interfaces.js';
import { createMemstoreMessaging } from '../../../src/drivers/memstore/messaging.js';

const BACKLOG = 5_000;
const message = (i: number) => ({ topic: 'jobs', payload: new TextEncoder().encode(String(i)), headers: {} });
const indexOf = (d: Delivery) => Number(new TextDecoder().decode(d.payload));

it('delivers a backlog of thousands once each, in order, with a redelivery deep in it in its place', async () => {
  const driver = createMemstoreMessaging({ endpoint: `memory://backlog-${randomUUID()}`, namespace: 'q' });
  await driver.connect();
  for (let i = 0; i < BACKLOG; i++) await driver.enqueue(message(i));

  // 3,000 is refused once, after thousands were taken from the head: it must come back before
  // the entries behind it that are still waiting, and nothing else may come twice.
  const NACKED = 3_000;
  const seen: Array<[number, number]> = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const subscription = await driver.consume(
    'jobs',
    'workers',
    async (d) => {
      const i = indexOf(d);
      seen.push([i, d.attempt]);
      if (i === NACKED && d.attempt === 1) await d.nack();
      else await d.ack();
      if (seen.length === BACKLOG + 1) done();
    },
    { prefetch: 16 },
  );
  // A message lost in the queue would leave this waiting: fail with what did come instead.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    all,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${seen.length} of ${BACKLOG + 1} deliveries came within 10 s`)),
        10_000,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  await subscription.close();
  await driver.close();

  const firsts = seen.filter(([, attempt]) => attempt === 1).map(([i]) => i);
  expect(firsts).toEqual(Array.from({ length: BACKLOG }, (_, i) => i));
  const again = seen.filter(([, attempt]) => attempt > 1);
  expect(again).toEqual([[NACKED, 2]]);
  // Back in sequence order: ahead of every entry that was still waiting when it was refused.
  const redelivered = seen.findIndex(([i, attempt]) => i === NACKED && attempt === 2);
  const firstAfter = seen.findIndex(([i]) => i > NACKED + 16);
  expect(redelivered).toBeLessThan(firstAfter);
});
