/**
 * The mailbox runner over real sources (NATS JetStream, Kafka, Redis Streams) and real stores
 * (SQLite, PostgreSQL): what a producer publishes is stored once, across a restart of the runner
 * and of its store; duplicates of a message id make no second row; Watch sees what is stored
 * after it starts, once; retention and max_messages remove only the oldest; a payload above
 * max_message_size is stored without it.
 */
import { create } from '@bufbuild/protobuf';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import {
  BackendDownError,
  type AnyDriver,
  type MailboxCapability,
  type MailboxFilter,
  type MailboxStore,
} from '../../../src/drivers/interfaces.js';
import type { CreateRunnerOptions } from '../../../src/runners/create-runner.js';
import { createDriver } from '../../../src/drivers/registry.js';
import { EnvelopeSchema } from '../../../src/gen/prism/data/v1/envelope_pb.js';
import type { MailboxMessage } from '../../../src/gen/prism/data/v1/mailbox_pb.js';
import { encodeEnvelope } from '../../../src/runners/envelope.js';
import type { MailboxRunner } from '../../../src/runners/mailbox/runner.js';
import type { ProducerRunner } from '../../../src/runners/producer/runner.js';
import type { PatternSettings } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import {
  connectPostgres,
  describeWithServices,
  kafkaBrokers,
  natsUrl,
  postgresUrl,
  redisUrl,
  type ServiceName,
} from '../../support/services.js';
import { buildRunner, bytes, eventually, memoryLogger, uniqueNamespace } from '../../unit/runners/helpers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

interface Backend {
  service?: ServiceName;
  backend: string;
  endpoint: () => string;
}

const SOURCES: Record<string, Backend> = {
  nats: { service: 'nats', backend: 'nats', endpoint: () => natsUrl() },
  kafka: { service: 'kafka', backend: 'kafka', endpoint: () => `kafka://${kafkaBrokers().join(',')}` },
  'redis streams': { service: 'redis', backend: 'redis', endpoint: () => redisUrl() },
};
const STORES: Record<string, Backend> = {
  sqlite: { backend: 'sqlite', endpoint: () => 'file:mailbox.sqlite' },
  postgres: { service: 'postgres', backend: 'postgres', endpoint: () => postgresUrl() },
};

const TOPIC = 'orders.events';
const ALICE = { subject: 'user:alice', tenant: 'acme', roles: ['writer'] };
const BOB = { subject: 'user:bob', tenant: 'globex', roles: [] };

/** Every stored message, oldest first, following page tokens. */
async function everything(runner: MailboxRunner, filter: MailboxFilter = {}): Promise<MailboxMessage[]> {
  const all: MailboxMessage[] = [];
  let pageToken = '';
  do {
    const page = await runner.query({
      filter,
      order: 'oldest',
      limit: 50,
      ...(pageToken ? { pageToken } : {}),
    });
    all.push(...page.messages);
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  return all;
}

const ids = (messages: readonly MailboxMessage[]) => messages.map((m) => m.envelope!.messageId);

for (const [sourceName, source] of Object.entries(SOURCES)) {
  for (const [storeName, store] of Object.entries(STORES)) {
    const services = [source.service, store.service].filter((s): s is ServiceName => s !== undefined);
    await describeWithServices(services, `mailbox runner: ${sourceName} source, ${storeName} store`, () => {
      /** A mailbox and a producer of one namespace; `dataDir` survives a restart of the mailbox. */
      function setup(settings: Partial<Omit<PatternSettings, '$typeName'>> = {}) {
        const namespace = uniqueNamespace('mbx');
        const dataDir = mkdtempSync(join(tmpdir(), 'prism-mailbox-it-'));
        cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
        const mailbox = (options: Pick<CreateRunnerOptions, 'driverFactory'> = {}) => {
          const runner = buildRunner<MailboxRunner>(
            {
              type: 'mailbox',
              name: 'inbox',
              namespace,
              slots: {
                source: { backend: source.backend, endpoint: source.endpoint() },
                store: { backend: store.backend, endpoint: store.endpoint() },
              },
              settings: { topic: TOPIC, indexedHeaders: ['order-id'], ...settings },
            },
            {
              dataDir,
              logger: memoryLogger(),
              mailbox: { retryDelayMs: 50, sweepIntervalMs: 200, ackTimeoutMs: 2_000 },
              ...options,
            },
          );
          cleanup.push(() => runner.stop());
          return runner;
        };
        const producer = async () => {
          const runner = buildRunner<ProducerRunner>({
            type: 'producer',
            namespace,
            slots: { sink: { backend: source.backend, endpoint: source.endpoint() } },
            settings: { topic: TOPIC },
          });
          await runner.start();
          cleanup.push(() => runner.stop());
          return runner;
        };
        /** The source backend as a plain client, to publish envelopes the producer would not make. */
        const raw = async () => {
          const driver: AnyDriver = await createDriver(source.backend, {
            endpoint: source.endpoint(),
            namespace,
          });
          await driver.connect();
          cleanup.push(() => driver.close());
          return driver;
        };
        return { namespace, mailbox, producer, raw };
      }

      it('stores every message once across a runner and store restart, duplicates included', async () => {
        const { mailbox, producer } = setup();
        const publisher = await producer();
        const published: string[] = [];
        const publish = async (i: number, messageId?: string) => {
          const result = await publisher.publish(
            {
              payload: new Uint8Array([i % 256, 0, 255]),
              headers: { 'order-id': `o-${i % 4}` },
              ...(messageId ? { messageId } : {}),
            },
            i % 2 === 0 ? ALICE : BOB,
          );
          if (!published.includes(result.messageId)) published.push(result.messageId);
        };
        for (let i = 0; i < 20; i++) await publish(i);

        const first = mailbox();
        await first.start();
        await eventually(async () => (await everything(first)).length >= 5, 30_000, 'the first messages');
        await first.stop();

        for (let i = 20; i < 40; i++) await publish(i);
        // The same message id twice: the backend may carry both, the mailbox keeps one.
        await publish(40, 'order-40-created');
        await publish(41, 'order-40-created');

        const second = mailbox();
        await second.start();
        await eventually(
          async () => (await everything(second)).length >= published.length,
          30_000,
          'every message after the restart',
        );
        // Redeliveries still arriving make no second row.
        await new Promise((resolve) => setTimeout(resolve, 500));
        const stored = await everything(second);
        expect(stored).toHaveLength(42 - 1);
        expect(new Set(ids(stored))).toEqual(new Set(published));
        const one = stored.find((m) => m.envelope!.messageId === published[3])!;
        expect([...one.envelope!.payload]).toEqual([3, 0, 255]);
        expect(one.envelope!.session?.subject).toBe('user:bob');
        expect(one.envelope!.headers).toEqual({ 'order-id': 'o-3' });
        expect(one.payloadOmitted).toBe(false);
        expect(one.payloadSize).toBe(3n);

        const aliceOrder1 = await everything(second, { tenant: 'acme', headers: { 'order-id': 'o-1' } });
        // Even i are Alice's (acme); i % 4 === 1 is odd: none match both.
        expect(aliceOrder1).toEqual([]);
        const aliceOrder2 = await everything(second, { tenant: 'acme', headers: { 'order-id': 'o-2' } });
        expect(aliceOrder2).toHaveLength(10);
      });

      it('Watch sees each matching message stored after it started, once', async () => {
        const { mailbox, producer } = setup();
        const publisher = await producer();
        const before = await publisher.publish(
          { payload: bytes('before'), headers: { 'order-id': 'o-1' } },
          ALICE,
        );
        const runner = mailbox();
        await runner.start();
        await eventually(async () => (await everything(runner)).length === 1, 30_000, 'the first message');

        const seen: MailboxMessage[] = [];
        const all: MailboxMessage[] = [];
        const stopOne = runner.watch(
          { headers: { 'order-id': 'o-1' } },
          (m) => seen.push(m),
          () => undefined,
        );
        const stopAll = runner.watch(
          {},
          (m) => all.push(m),
          () => undefined,
        );
        cleanup.push(async () => {
          stopOne();
          stopAll();
        });
        const after: string[] = [];
        for (let i = 0; i < 6; i++) {
          after.push(
            (
              await publisher.publish(
                { payload: bytes(`after ${i}`), headers: { 'order-id': `o-${i % 2}` } },
                BOB,
              )
            ).messageId,
          );
        }
        await eventually(() => all.length >= 6, 30_000, 'six watched messages');
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(new Set(ids(all))).toEqual(new Set(after));
        expect(all).toHaveLength(6);
        expect(ids(seen).sort()).toEqual([after[1], after[3], after[5]].sort());
        expect(ids(all)).not.toContain(before.messageId);
      });

      if (sourceName === 'nats') {
        it('retention deletes only what was published longer ago; max_messages keeps the newest', async () => {
          const { mailbox, raw, namespace } = setup({ retention: '1h', maxMessages: 5 });
          const driver = await raw();
          const now = Date.now();
          const send = (id: string, publishedAtMs: number) =>
            driver.enqueue!(
              encodeEnvelope(
                create(EnvelopeSchema, {
                  messageId: id,
                  topic: TOPIC,
                  namespace,
                  publishedAtMs: BigInt(publishedAtMs),
                  payload: bytes(id),
                }),
              ),
            );
          await send('two-hours-old', now - 2 * 3_600_000);
          await send('61-minutes-old', now - 61 * 60_000);
          for (let i = 0; i < 7; i++) await send(`recent-${i}`, now - 59 * 60_000 + i * 1000);
          const runner = mailbox();
          await runner.start();
          await eventually(
            async () =>
              ids(await everything(runner)).join() === [2, 3, 4, 5, 6].map((i) => `recent-${i}`).join(),
            15_000,
            'retention and max_messages to leave the five newest recent messages',
          );
        });

        it('ends every Watch when the runner stops, and refuses a new one', async () => {
          const { mailbox } = setup();
          const runner = mailbox();
          await runner.start();
          let ended = 0;
          runner.watch(
            {},
            () => undefined,
            () => ended++,
          );
          runner.watch(
            { tenant: 'acme' },
            () => undefined,
            () => ended++,
          );
          await runner.stop();
          expect(ended).toBe(2);
          expect(() =>
            runner.watch(
              {},
              () => undefined,
              () => undefined,
            ),
          ).toThrow('is not running');
        });

        it('refuses a Watch on a header that is not indexed', async () => {
          const { mailbox } = setup();
          const runner = mailbox();
          await runner.start();
          expect(() =>
            runner.watch(
              { headers: { region: 'eu' } },
              () => undefined,
              () => undefined,
            ),
          ).toThrow('header "region" is not indexed in this mailbox');
        });

        it('acknowledges only what the store committed: failed inserts come back and are stored once', async () => {
          const { mailbox, producer } = setup();
          const publisher = await producer();
          const published: string[] = [];
          for (let i = 0; i < 10; i++)
            published.push((await publisher.publish({ payload: bytes(`m${i}`) }, ALICE)).messageId);
          let failures = 4;
          const runner = mailbox({
            driverFactory: async (backend, options, context) => {
              const driver = await createDriver(backend, options);
              if (context.slot !== 'store') return driver;
              const wrapped = Object.create(driver) as AnyDriver & MailboxCapability;
              wrapped.openMailbox = async (name, opts) => {
                const box = await (driver as AnyDriver & MailboxCapability).openMailbox(name, opts);
                const flaky: MailboxStore = Object.create(box);
                flaky.insert = async (records) => {
                  if (failures-- > 0) throw new BackendDownError(backend, 'insert: injected failure');
                  return box.insert(records);
                };
                return flaky;
              };
              return wrapped;
            },
          });
          await runner.start();
          await eventually(async () => (await everything(runner)).length === 10, 30_000, 'every message');
          await new Promise((resolve) => setTimeout(resolve, 300));
          expect(ids(await everything(runner)).sort()).toEqual([...published].sort());
          expect(failures).toBeLessThan(0);
        });

        if (storeName === 'postgres') {
          it('loses nothing when PostgreSQL drops the store connections mid-ingest', async () => {
            const { mailbox, producer, namespace } = setup();
            const publisher = await producer();
            const runner = mailbox();
            await runner.start();
            const published: string[] = [];
            let terminated = 0;
            const admin = await connectPostgres();
            cleanup.push(() => admin.end());
            for (let i = 0; i < 30; i++) {
              published.push((await publisher.publish({ payload: bytes(`m${i}`) }, ALICE)).messageId);
              if (i % 10 === 5) {
                const result = await admin.query(
                  'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
                  [`prism-mailbox/${namespace}`],
                );
                terminated += result.rowCount ?? 0;
              }
            }
            await eventually(async () => (await everything(runner)).length === 30, 30_000, 'every message');
            expect(ids(await everything(runner)).sort()).toEqual([...published].sort());
            expect(terminated).toBeGreaterThan(0);
          });
        }

        it('stores a payload above max_message_size without it, with its size', async () => {
          const { mailbox, producer } = setup({ maxMessageSize: '1KiB' });
          const publisher = await producer();
          const big = await publisher.publish({ payload: new Uint8Array(1025).fill(7) }, ALICE);
          const small = await publisher.publish({ payload: new Uint8Array(1024).fill(8) }, ALICE);
          const runner = mailbox();
          await runner.start();
          await eventually(async () => (await everything(runner)).length === 2, 30_000, 'both messages');
          const bigStored = await runner.get(big.messageId);
          const smallStored = await runner.get(small.messageId);
          expect([
            bigStored.payloadOmitted,
            bigStored.payloadSize,
            bigStored.envelope!.payload.length,
          ]).toEqual([true, 1025n, 0]);
          expect([
            smallStored.payloadOmitted,
            smallStored.payloadSize,
            smallStored.envelope!.payload,
          ]).toEqual([false, 1024n, new Uint8Array(1024).fill(8)]);
        });
      }
    });
  }
}
