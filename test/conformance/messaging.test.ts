/**
 * One messaging suite for every driver (STYLE.md: Dapr-style conformance). A capability a driver
 * declares is tested; one it does not declare must be absent. Topics are unique per run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PayloadTooLargeError,
  type AnyDriver,
  type Delivery,
  type Message,
  type Subscription,
} from '../../src/drivers/interfaces.js';
import { PARTITION_KEY_HEADER } from '../../src/drivers/messaging-support.js';
import { declaredCapabilities, DRIVERS, type DriverUnderTest } from './drivers.js';
import { describeWithService, uniqueName } from '../support/services.js';
import type { ConsumerRunner } from '../../src/runners/consumer/runner.js';
import { buildRunner, memoryLogger } from '../unit/runners/helpers.js';

const ACK_TIMEOUT_MS = 1_000;
const WAIT_MS = 20_000;

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

async function waitFor(what: string, condition: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Declares the suite for one driver, skipping (or failing under PRISM_REQUIRE_SERVICES=1) without its service. */
async function describeDriver(entry: DriverUnderTest, fn: () => void): Promise<void> {
  const title = `messaging conformance: ${entry.name}`;
  if (entry.service) await describeWithService(entry.service, title, fn);
  else describe(title, fn);
}

// Every driver that declares a messaging capability (the list is shared with the keyvalue suite).
const MESSAGING = new Set(['pubsub', 'queue']);
const messagingDrivers = DRIVERS.filter((d) => declaredCapabilities(d).some((c) => MESSAGING.has(c)));

for (const entry of messagingDrivers) {
  // Declared in the registry, checked against the driver by the first test: a capability that is
  // declared is tested; one that is not is asserted absent (and its cases are not defined at all).
  const declaredCaps = new Set<string>(declaredCapabilities(entry));
  await describeDriver(entry, () => {
    const namespace = uniqueName('conf').replace(/[^a-z0-9-]/g, '');
    const drivers: AnyDriver[] = [];
    const subscriptions: Subscription[] = [];
    let driver: AnyDriver;

    async function open(ns = namespace): Promise<AnyDriver> {
      const d = await entry.create(ns);
      drivers.push(d);
      await d.connect();
      return d;
    }
    async function track<T extends Subscription>(s: Promise<T>): Promise<T> {
      const sub = await s;
      subscriptions.push(sub);
      return sub;
    }
    const topic = (name: string) => uniqueName(name);

    beforeAll(async () => {
      driver = await open();
    });

    afterAll(async () => {
      await Promise.allSettled(subscriptions.map((s) => s.close()));
      await Promise.allSettled(drivers.map((d) => d.close()));
      await entry.dispose?.();
    });

    it('implements exactly the messaging methods it declares', () => {
      const caps = driver.capabilities;
      const registered = declaredCapabilities(entry).filter((c) => MESSAGING.has(c));
      expect([...caps].filter((c) => MESSAGING.has(c)).sort()).toEqual([...registered].sort());
      for (const method of ['publish', 'publishMany', 'subscribe'] as const) {
        expect(typeof driver[method]).toBe(caps.has('pubsub') ? 'function' : 'undefined');
      }
      for (const method of ['enqueue', 'enqueueMany', 'consume'] as const) {
        expect(typeof driver[method]).toBe(caps.has('queue') ? 'function' : 'undefined');
      }
    });

    it('answers health checks while connected', async () => {
      await expect(driver.health()).resolves.toBeUndefined();
    });

    const send = (d: AnyDriver, message: Message) =>
      declaredCaps.has('queue') ? d.enqueue!(message) : d.publish!(message);

    if (entry.messageLimitBytes)
      it('refuses a message above the server limit with E_PAYLOAD_TOO_LARGE naming the backend and the limit, at once', async () => {
        const limit = await entry.messageLimitBytes!();
        const t = topic('too-large');
        const started = Date.now();
        const err = await send(driver, { topic: t, payload: new Uint8Array(limit + 1), headers: {} }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(PayloadTooLargeError);
        const tooLarge = err as PayloadTooLargeError;
        expect(tooLarge.code).toBe('E_PAYLOAD_TOO_LARGE');
        expect(tooLarge.backend).toBe(entry.backend);
        expect(tooLarge.limitBytes).toBe(limit);
        expect(tooLarge.message).toContain(`${entry.backend} refused a message of`);
        expect(tooLarge.message).toContain(`its limit is ${limit} bytes`);
        expect(Date.now() - started).toBeLessThan(3_000); // refused, not retried until a deadline
        // The driver still works afterwards.
        await driver.health();
      });
    if (entry.messageLimitBytes)
      it('refuses a batch holding one message above the server limit with E_PAYLOAD_TOO_LARGE naming the backend', async () => {
        const limit = await entry.messageLimitBytes!();
        const t = topic('too-large-batch');
        const batch = [
          { topic: t, payload: text('small'), headers: {} },
          { topic: t, payload: new Uint8Array(limit + 1), headers: {} },
        ];
        const err = await (
          declaredCaps.has('queue') ? driver.enqueueMany!(batch) : driver.publishMany!(batch)
        ).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(PayloadTooLargeError);
        expect((err as PayloadTooLargeError).backend).toBe(entry.backend);
        expect((err as PayloadTooLargeError).limitBytes).toBe(limit);
        await driver.health();
      });
    if (!entry.messageLimitBytes)
      it('delivers a 2 MiB payload unchanged (no message size limit below it)', async () => {
        const t = topic('large');
        const payload = Uint8Array.from({ length: 2 * 1024 * 1024 }, (_, i) => (i * 31) & 0xff);
        const got: Uint8Array[] = [];
        if (declaredCaps.has('queue')) {
          await track(
            driver.consume!(
              t,
              'large',
              async (d) => {
                got.push(d.payload);
                await d.ack();
              },
              { ackTimeoutMs: 10_000 },
            ),
          );
        } else {
          await track(driver.subscribe!(t, (m) => void got.push(m.payload)));
        }
        await send(driver, { topic: t, payload, headers: {} });
        await waitFor('the 2 MiB message', () => got.length === 1);
        expect(Buffer.from(got[0]!).equals(Buffer.from(payload))).toBe(true);
      });

    if (declaredCaps.has('pubsub'))
      describe('pubsub', () => {
        it('delivers a binary payload with all 256 byte values and its headers unchanged', async () => {
          const t = topic('bytes');
          const received: Message[] = [];
          await track(driver.subscribe!(t, (m) => void received.push(m)));
          const headers = {
            'content-type': 'application/octet-stream',
            'x-trace': 'abc-123',
            'x-unicode': 'välue ✓ ü',
          };
          await driver.publish!({ topic: t, payload: allBytes, headers });
          await waitFor('one message', () => received.length === 1);
          expect(received[0]!.topic).toBe(t);
          expect(Buffer.from(received[0]!.payload).equals(Buffer.from(allBytes))).toBe(true);
          expect(received[0]!.headers).toEqual(headers);
        });

        it('delivers an empty payload without headers', async () => {
          const t = topic('empty');
          const received: Message[] = [];
          await track(driver.subscribe!(t, (m) => void received.push(m)));
          await driver.publish!({ topic: t, payload: new Uint8Array(0), headers: {} });
          await waitFor('one message', () => received.length === 1);
          expect(received[0]!.payload.length).toBe(0);
          expect(received[0]!.headers).toEqual({});
        });

        it('keeps the order of 50 messages published to one topic', async () => {
          const t = topic('order');
          const seen: string[] = [];
          await track(
            driver.subscribe!(t, async (m) => {
              if (seen.length % 7 === 0) await sleep(1); // a slow handler must not reorder
              seen.push(str(m.payload));
            }),
          );
          const sent = Array.from({ length: 50 }, (_, i) => `m${i}`);
          // Kafka keeps order per partition key; every other driver orders the whole topic.
          const headers = { [PARTITION_KEY_HEADER]: 'one-key' };
          for (const p of sent) await driver.publish!({ topic: t, payload: text(p), headers });
          await waitFor('50 messages', () => seen.length === 50);
          expect(seen).toEqual(sent);
        });

        it('publishes a batch of 40 in one call, in order, with payloads and headers unchanged', async () => {
          const t = topic('ps-many');
          const received: Message[] = [];
          await track(driver.subscribe!(t, (m) => void received.push(m)));
          const headers = { [PARTITION_KEY_HEADER]: 'one-key', 'x-batch': 'b1' };
          const sent = Array.from({ length: 40 }, (_, i) => ({ topic: t, payload: text(`p${i}`), headers }));
          await driver.publishMany!(sent);
          await driver.publishMany!([]);
          await waitFor('40 messages', () => received.length >= 40);
          await sleep(100);
          expect(received.map((m) => str(m.payload))).toEqual(sent.map((m) => str(m.payload)));
          expect(received.every((m) => m.headers['x-batch'] === 'b1')).toBe(true);
        });

        it('delivers to five subscriptions opened at once on topics that did not exist, what is published after they resolve', async () => {
          const topics = Array.from({ length: 5 }, (_, i) => topic(`fresh-ps-${i}`));
          const got = topics.map(() => [] as string[]);
          await Promise.all(
            topics.map((t, i) => track(driver.subscribe!(t, (m) => void got[i]!.push(str(m.payload))))),
          );
          for (const [i, t] of topics.entries())
            await driver.publish!({ topic: t, payload: text(`to-${i}`), headers: {} });
          await waitFor('every subscription got its message', () => got.every((l) => l.length >= 1));
          expect(got).toEqual(topics.map((_, i) => [`to-${i}`]));
        });

        it('fans every message out to every subscriber', async () => {
          const t = topic('fanout');
          const got: string[][] = [[], [], []];
          for (const list of got) await track(driver.subscribe!(t, (m) => void list.push(str(m.payload))));
          for (const p of ['a', 'b', 'c']) await driver.publish!({ topic: t, payload: text(p), headers: {} });
          await waitFor('3 × 3 messages', () => got.every((l) => l.length === 3));
          expect(got.map((l) => [...l].sort())).toEqual([
            ['a', 'b', 'c'],
            ['a', 'b', 'c'],
            ['a', 'b', 'c'],
          ]);
        });

        it('stops delivering to a closed subscription while others keep receiving', async () => {
          const t = topic('unsub');
          const first: string[] = [];
          const second: string[] = [];
          const sub = await driver.subscribe!(t, (m) => void first.push(str(m.payload)));
          await track(driver.subscribe!(t, (m) => void second.push(str(m.payload))));
          await driver.publish!({ topic: t, payload: text('before'), headers: {} });
          await waitFor('both got "before"', () => first.length === 1 && second.length === 1);
          await sub.close();
          await driver.publish!({ topic: t, payload: text('after'), headers: {} });
          await waitFor('second got "after"', () => second.length === 2);
          await sleep(200);
          expect(first).toEqual(['before']);
          expect(second).toEqual(['before', 'after']);
        });

        it('isolates namespaces: the same topic in another namespace is a different topic', async () => {
          const other = await open(`${namespace}-other`);
          const t = topic('iso');
          const mine: string[] = [];
          const theirs: string[] = [];
          await track(driver.subscribe!(t, (m) => void mine.push(str(m.payload))));
          await track(other.subscribe!(t, (m) => void theirs.push(str(m.payload))));
          await driver.publish!({ topic: t, payload: text('mine'), headers: {} });
          await other.publish!({ topic: t, payload: text('theirs'), headers: {} });
          await waitFor('each got one', () => mine.length === 1 && theirs.length === 1);
          await sleep(200);
          expect(mine).toEqual(['mine']);
          expect(theirs).toEqual(['theirs']);
        });
      });

    if (declaredCaps.has('queue'))
      describe('queue', () => {
        const opts = { ackTimeoutMs: ACK_TIMEOUT_MS };

        it('delivers messages enqueued before the first consumer, with bytes and headers unchanged', async () => {
          const t = topic('backlog');
          const headers = { 'x-correlation-id': 'c-1', 'content-type': 'application/octet-stream' };
          await driver.enqueue!({ topic: t, payload: allBytes, headers });
          await driver.enqueue!({ topic: t, payload: text('second'), headers: {} });
          const got: Delivery[] = [];
          await track(
            driver.consume!(
              t,
              'backlog',
              async (d) => {
                got.push(d);
                await d.ack();
              },
              opts,
            ),
          );
          await waitFor('two deliveries', () => got.length === 2);
          const binary = got.find((d) => d.payload.length === 256)!;
          const second = got.find((d) => str(d.payload) === 'second')!;
          expect(binary.topic).toBe(t);
          expect(Buffer.from(binary.payload).equals(Buffer.from(allBytes))).toBe(true);
          expect(binary.headers).toEqual(headers);
          expect(binary.attempt).toBe(1);
          expect(second.headers).toEqual({});
          expect(second.attempt).toBe(1);
        });

        it('shares a group between its consumers, once per message, while another group gets everything', async () => {
          const t = topic('groups');
          const a1: string[] = [];
          const a2: string[] = [];
          const b: string[] = [];
          const handler = (list: string[]) => async (d: Delivery) => {
            list.push(str(d.payload));
            await sleep(5);
            await d.ack();
          };
          await track(driver.consume!(t, 'group-a', handler(a1), opts));
          await track(driver.consume!(t, 'group-a', handler(a2), opts));
          await track(driver.consume!(t, 'group-b', handler(b), opts));
          const sent = Array.from({ length: 40 }, (_, i) => `q${i}`);
          for (const p of sent) {
            await driver.enqueue!({ topic: t, payload: text(p), headers: { [PARTITION_KEY_HEADER]: p } });
          }
          await waitFor('group a and group b got all', () => a1.length + a2.length >= 40 && b.length >= 40);
          await sleep(ACK_TIMEOUT_MS + 300); // nothing acknowledged may come back
          expect([...a1, ...a2].sort()).toEqual([...sent].sort());
          expect(a1.length).toBeGreaterThan(0);
          expect(a2.length).toBeGreaterThan(0);
          expect([...b].sort()).toEqual([...sent].sort());
        });

        it('redelivers a nacked message with attempt 2', async () => {
          const t = topic('nack');
          const seen: { payload: string; attempt: number }[] = [];
          await track(
            driver.consume!(
              t,
              'nackers',
              async (d) => {
                seen.push({ payload: str(d.payload), attempt: d.attempt });
                if (d.attempt === 1) await d.nack();
                else await d.ack();
              },
              opts,
            ),
          );
          await driver.enqueue!({ topic: t, payload: text('retry-me'), headers: {} });
          await waitFor('the redelivery', () => seen.length >= 2);
          await sleep(ACK_TIMEOUT_MS + 300);
          expect(seen).toEqual([
            { payload: 'retry-me', attempt: 1 },
            { payload: 'retry-me', attempt: 2 },
          ]);
        });

        it('redelivers a message that was not acknowledged within ackTimeoutMs', async () => {
          const t = topic('timeout');
          const seen: { payload: string; attempt: number; at: number }[] = [];
          await track(
            driver.consume!(
              t,
              'sleepers',
              async (d) => {
                seen.push({ payload: str(d.payload), attempt: d.attempt, at: Date.now() });
                if (d.attempt >= 2) await d.ack(); // the first delivery is never acknowledged
              },
              opts,
            ),
          );
          await driver.enqueue!({ topic: t, payload: text('forgotten'), headers: {} });
          await waitFor('the redelivery', () => seen.length >= 2);
          await sleep(ACK_TIMEOUT_MS + 300);
          expect(seen.map(({ payload, attempt }) => ({ payload, attempt }))).toEqual([
            { payload: 'forgotten', attempt: 1 },
            { payload: 'forgotten', attempt: 2 },
          ]);
          expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 100);
        });

        it('delivers to five consumers opened at once on topics that did not exist, what is enqueued after they resolve', async () => {
          const topics = Array.from({ length: 5 }, (_, i) => topic(`fresh-q-${i}`));
          const got = topics.map(() => [] as string[]);
          await Promise.all(
            topics.map((t, i) =>
              track(
                driver.consume!(
                  t,
                  'fresh',
                  async (d) => {
                    got[i]!.push(str(d.payload));
                    await d.ack();
                  },
                  opts,
                ),
              ),
            ),
          );
          for (const [i, t] of topics.entries())
            await driver.enqueue!({ topic: t, payload: text(`to-${i}`), headers: {} });
          await waitFor('every consumer got its message', () => got.every((l) => l.length >= 1));
          expect(got).toEqual(topics.map((_, i) => [`to-${i}`]));
        });

        it('redelivers with attempt 2 a message whose consumer closed without acknowledging it, after the ack timeout', async () => {
          const t = topic('cancelled');
          const first: { payload: string; attempt: number }[] = [];
          const sub = await driver.consume!(
            t,
            'cancellers',
            (d) => void first.push({ payload: str(d.payload), attempt: d.attempt }),
            opts,
          );
          await driver.enqueue!({ topic: t, payload: text('held'), headers: {} });
          await waitFor('the first delivery', () => first.length === 1);
          await sub.close(); // the stream is cancelled with the message unacknowledged
          await sleep(ACK_TIMEOUT_MS + 200);
          const restarted = await open();
          const second: { payload: string; attempt: number }[] = [];
          await track(
            restarted.consume!(
              t,
              'cancellers',
              async (d) => {
                second.push({ payload: str(d.payload), attempt: d.attempt });
                await d.ack();
              },
              opts,
            ),
          );
          await waitFor('the redelivery', () => second.length >= 1);
          await sleep(300);
          expect(first).toEqual([{ payload: 'held', attempt: 1 }]);
          expect(second).toEqual([{ payload: 'held', attempt: 2 }]);
        });

        it('keeps the order of 30 messages enqueued without a partition key', async () => {
          const t = topic('unkeyed');
          const seen: string[] = [];
          await track(
            driver.consume!(
              t,
              'orderly',
              async (d) => {
                seen.push(str(d.payload));
                await d.ack();
              },
              opts,
            ),
          );
          const sent = Array.from({ length: 30 }, (_, i) => `u${i}`);
          for (const p of sent) await driver.enqueue!({ topic: t, payload: text(p), headers: {} });
          await waitFor('30 messages', () => seen.length >= 30);
          expect(seen).toEqual(sent);
        });

        it('enqueues a batch of 60 in one call, in order, each delivered once with its headers', async () => {
          const t = topic('many');
          const seen: Delivery[] = [];
          await track(
            driver.consume!(
              t,
              'many',
              async (d) => {
                seen.push(d);
                await d.ack();
              },
              opts,
            ),
          );
          const sent = Array.from({ length: 60 }, (_, i) => ({
            topic: t,
            payload: text(`b${i}`),
            headers: { 'x-i': String(i) },
          }));
          await driver.enqueueMany!(sent);
          await driver.enqueueMany!([]);
          await waitFor('60 messages', () => seen.length >= 60);
          await sleep(200);
          expect(seen.map((d) => str(d.payload))).toEqual(sent.map((m) => str(m.payload)));
          expect(seen.map((d) => d.headers['x-i'])).toEqual(sent.map((m) => m.headers['x-i']));
          expect(seen.every((d) => d.attempt === 1)).toBe(true);
        });

        it('settles 50 deliveries acknowledged at once: none comes back after the ack timeout', async () => {
          const t = topic('ack-many');
          const got: Delivery[] = [];
          await track(driver.consume!(t, 'ack-many', (d) => void got.push(d), { ackTimeoutMs: 2_000 }));
          await driver.enqueueMany!(
            Array.from({ length: 50 }, (_, i) => ({ topic: t, payload: text(`k${i}`), headers: {} })),
          );
          await waitFor('50 deliveries', () => got.length >= 50);
          await Promise.all(got.map((d) => d.ack()));
          await sleep(2_600);
          expect(got.map((d) => str(d.payload))).toEqual(Array.from({ length: 50 }, (_, i) => `k${i}`));
        });

        if (entry.backend !== 'kafka')
          it('reads no further ahead than prefetch while a member is held: the rest go to the other member', async () => {
            const t = topic('prefetch');
            let release!: () => void;
            const held = new Promise<void>((r) => (release = r));
            const first: string[] = [];
            const second: string[] = [];
            await track(
              driver.consume!(
                t,
                'prefetch',
                async (d) => {
                  first.push(str(d.payload));
                  await held;
                },
                { ackTimeoutMs: 30_000, prefetch: 4 },
              ),
            );
            await driver.enqueue!({ topic: t, payload: text('p0'), headers: {} });
            await waitFor('the held member to take one', () => first.length === 1);
            await track(
              driver.consume!(
                t,
                'prefetch',
                async (d) => {
                  second.push(str(d.payload));
                  await d.ack();
                },
                { ackTimeoutMs: 30_000 },
              ),
            );
            await driver.enqueueMany!(
              Array.from({ length: 40 }, (_, i) => ({ topic: t, payload: text(`p${i + 1}`), headers: {} })),
            );
            await waitFor('the other member to take the rest', () => second.length >= 40 - 4);
            await sleep(300);
            expect(first).toEqual(['p0']);
            expect(second.length).toBeGreaterThanOrEqual(36);
            release();
          });

        it('enqueues one batch across two topics, each topic in its order', async () => {
          const [t1, t2] = [topic('many-a'), topic('many-b')];
          const got: Record<string, string[]> = { [t1]: [], [t2]: [] };
          for (const t of [t1, t2])
            await track(
              driver.consume!(
                t,
                'two',
                async (d) => {
                  got[t]!.push(str(d.payload));
                  await d.ack();
                },
                opts,
              ),
            );
          const batch = Array.from({ length: 20 }, (_, i) => ({
            topic: i % 2 === 0 ? t1 : t2,
            payload: text(`${i % 2 === 0 ? 'a' : 'b'}${i}`),
            headers: {},
          }));
          await driver.enqueueMany!(batch);
          await waitFor('20 messages', () => got[t1]!.length + got[t2]!.length >= 20);
          expect(got[t1]).toEqual(batch.filter((m) => m.topic === t1).map((m) => str(m.payload)));
          expect(got[t2]).toEqual(batch.filter((m) => m.topic === t2).map((m) => str(m.payload)));
        });

        it('keeps apart two groups whose group and topic names join alike (x__y on z, x on y__z)', async () => {
          const id = uniqueName('j').replace(/[^a-z0-9]/g, '');
          const [t1, t2] = [`z${id}`, `y__z${id}`];
          const first: string[] = [];
          const second: string[] = [];
          const collect = (list: string[]) => async (d: Delivery) => {
            list.push(str(d.payload));
            await d.ack();
          };
          await track(driver.consume!(t1, 'x__y', collect(first), opts));
          await track(driver.consume!(t2, 'x', collect(second), opts));
          await driver.enqueue!({ topic: t1, payload: text('for x__y'), headers: {} });
          await driver.enqueue!({ topic: t2, payload: text('for x'), headers: {} });
          await waitFor('both groups got one', () => first.length >= 1 && second.length >= 1);
          await sleep(300);
          expect(first).toEqual(['for x__y']);
          expect(second).toEqual(['for x']);
        });

        it('ignores a second ack of one delivery', async () => {
          const t = topic('settled');
          const seen: { payload: string; attempt: number }[] = [];
          const settled: string[] = [];
          await track(
            driver.consume!(
              t,
              'settlers',
              async (d) => {
                seen.push({ payload: str(d.payload), attempt: d.attempt });
                await d.ack();
                await d.ack();
                settled.push(str(d.payload));
              },
              opts,
            ),
          );
          await driver.enqueue!({ topic: t, payload: text('once'), headers: {} });
          await waitFor('the delivery settled', () => settled.length === 1);
          await sleep(ACK_TIMEOUT_MS * 2 + 300);
          expect(seen).toEqual([{ payload: 'once', attempt: 1 }]);
        });

        it('hands what a closed member held, unacknowledged, to the next member of its group with attempt 2', async () => {
          const t = topic('handover');
          const first: { payload: string; attempt: number }[] = [];
          const member = await driver.consume!(
            t,
            'handover',
            (d) => void first.push({ payload: str(d.payload), attempt: d.attempt }),
            opts,
          );
          await driver.enqueue!({ topic: t, payload: text('held'), headers: { 'x-k': 'v' } });
          await waitFor('the first delivery', () => first.length === 1);
          await member.close();

          const next: Delivery[] = [];
          await track(
            driver.consume!(
              t,
              'handover',
              async (d) => {
                next.push(d);
                await d.ack();
              },
              opts,
            ),
          );
          await waitFor('the redelivery to the next member', () => next.length >= 1);
          await sleep(ACK_TIMEOUT_MS + 300);
          expect(first).toEqual([{ payload: 'held', attempt: 1 }]);
          expect(
            next.map((d) => ({ payload: str(d.payload), attempt: d.attempt, headers: d.headers })),
          ).toEqual([{ payload: 'held', attempt: 2, headers: { 'x-k': 'v' } }]);
        });

        it('dead-letters through the consumer runner after max_retries, with the reason, original topic and attempts', async () => {
          const ns = `${namespace}-dl`;
          const t = topic('dlq');
          const consumer = buildRunner<ConsumerRunner>(
            {
              type: 'consumer',
              namespace: ns,
              slots: { source: entry.backend, 'dead-letter': entry.backend },
              settings: { topic: t, consumerGroup: 'dl', maxRetries: 2, ackTimeout: `${ACK_TIMEOUT_MS}ms` },
            },
            {
              logger: memoryLogger(),
              driverFactory: async () => entry.create(ns),
            },
          );
          await consumer.start();
          const attempts: number[] = [];
          try {
            await consumer.subscribe({}, async (d) => {
              attempts.push(d.envelope.attempt);
              await d.nack(`refused on attempt ${d.envelope.attempt}`);
            });
            const producerSide = await open(ns);
            await producerSide.enqueue!({
              topic: t,
              payload: text('poison'),
              headers: { 'prism-message-id': `dl-${t}`, 'x-order': '42' },
            });
            const dead: Delivery[] = [];
            await track(
              producerSide.consume!(
                `${t}.dead-letter`,
                'inspect',
                async (d) => {
                  dead.push(d);
                  await d.ack();
                },
                opts,
              ),
            );
            await waitFor('the dead letter', () => dead.length >= 1);
            await sleep(ACK_TIMEOUT_MS + 300);
            expect(attempts).toEqual([1, 2]);
            expect(dead).toHaveLength(1);
            expect(str(dead[0]!.payload)).toBe('poison');
            expect(dead[0]!.headers).toEqual({
              'prism-message-id': `dl-${t}`,
              'x-order': '42',
              'prism-dead-letter-reason': 'refused on attempt 2',
              'prism-original-topic': t,
              'prism-attempts': '2',
            });
          } finally {
            await consumer.stop();
          }
        });

        const retentionMs = 1_000;
        it(
          entry.trimsByRetention
            ? 'drops messages older than the namespace retention, so a new group starts after them'
            : 'keeps messages older than retentionMs (this driver does not trim by age)',
          async () => {
            const ns = `${namespace}-ret`;
            const trimming = await entry.create(ns, { retentionMs });
            drivers.push(trimming);
            await trimming.connect();
            const t = topic('retention');
            await trimming.enqueue!({ topic: t, payload: text('old'), headers: {} });
            await sleep(retentionMs + 200);
            await trimming.enqueue!({ topic: t, payload: text('new'), headers: {} });
            const got: string[] = [];
            await track(
              trimming.consume!(
                t,
                'late',
                async (d) => {
                  got.push(str(d.payload));
                  await d.ack();
                },
                opts,
              ),
            );
            await waitFor('the newest message', () => got.includes('new'));
            await sleep(300);
            // Sorted: without a partition key Kafka orders nothing across partitions.
            expect([...got].sort()).toEqual(entry.trimsByRetention ? ['new'] : ['new', 'old']);
          },
        );

        it('does not redeliver acknowledged messages after a consumer restart with the same group', async () => {
          const t = topic('restart');
          const first: string[] = [];
          const sub = await driver.consume!(
            t,
            'restarters',
            async (d) => {
              first.push(str(d.payload));
              await d.ack();
            },
            opts,
          );
          for (const p of ['r1', 'r2', 'r3'])
            await driver.enqueue!({ topic: t, payload: text(p), headers: {} });
          await waitFor('three deliveries', () => first.length === 3);
          await sub.close();

          await driver.enqueue!({ topic: t, payload: text('r4'), headers: {} });
          const restarted = await open();
          const second: string[] = [];
          await track(
            restarted.consume!(
              t,
              'restarters',
              async (d) => {
                second.push(str(d.payload));
                await d.ack();
              },
              opts,
            ),
          );
          await waitFor('the new message', () => second.length >= 1);
          await sleep(ACK_TIMEOUT_MS + 300);
          expect([...first].sort()).toEqual(['r1', 'r2', 'r3']);
          expect(second).toEqual(['r4']);
        });
      });
  });
}
