/**
 * PublishStream and Consume through the proxy only (client → proxy → runner → driver → backend),
 * on every messaging backend: a stream's messages arrive once each and in order, acknowledged in
 * band; a stalled consumer gets max_in_flight deliveries and no more until it acknowledges; a
 * refused message is acknowledged with its error and the stream goes on.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { PrismError } from '../../src/errors.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import {
  describeWithServices,
  kafkaBrokers,
  natsUrl,
  postgresUrl,
  redisUrl,
  uniqueName,
} from '../support/services.js';
import { consumeReader, sleep, streamNamespaceYaml, waitFor } from './support-streams.js';

const BACKENDS = ['memstore', 'redis', 'postgres', 'nats', 'kafka'] as const;
const dir = mkdtempSync(join(tmpdir(), 'prism-publish-stream-'));
const names = Object.fromEntries(BACKENDS.map((b) => [b, uniqueName(`stream-${b}`)])) as Record<
  (typeof BACKENDS)[number],
  string
>;

let proxy: RunningServer | undefined;
let endpoint: string;
const clients: DataClient[] = [];
const client = (backend: (typeof BACKENDS)[number]) => {
  const c = new DataClient(endpoint, { namespace: names[backend], pattern: undefined, timeoutMs: 20_000 });
  clients.push(c);
  return c;
};

await describeWithServices(
  ['redis', 'postgres', 'nats', 'kafka'],
  'PublishStream and Consume through the proxy',
  () => {
    beforeAll(async () => {
      await ensureBuilt();
      mkdirSync(join(dir, 'ns'));
      const pg = new URL(postgresUrl());
      const pgCredentials = `${decodeURIComponent(pg.username)}:${decodeURIComponent(pg.password)}`;
      pg.username = '';
      pg.password = '';
      writeFileSync(
        join(dir, 'backends.yaml'),
        [
          'backends:',
          `  redis: [{ name: test, endpoint: "${redisUrl()}" }]`,
          `  postgres: [{ name: test, endpoint: "${pg.toString()}" }]`,
          `  nats: [{ name: test, endpoint: "${natsUrl()}" }]`,
          `  kafka: [{ name: test, endpoint: "kafka://${kafkaBrokers().join(',')}" }]`,
          `  memstore: [{ name: local, endpoint: "memory://" }]`,
          '',
        ].join('\n'),
      );
      for (const backend of BACKENDS) {
        writeFileSync(
          join(dir, 'ns', `${backend}.yaml`),
          streamNamespaceYaml(
            names[backend],
            backend,
            {},
            backend === 'postgres' ? '${PRISM_E2E_PG_CREDENTIALS}' : undefined,
          ),
        );
      }
      proxy = await startProxy({ namespaces: join(dir, 'ns'), backends: join(dir, 'backends.yaml') }, [], {
        PRISM_E2E_PG_CREDENTIALS: pgCredentials,
      });
      endpoint = `127.0.0.1:${proxy.ready.port as number}`;
    }, 120_000);

    afterAll(async () => {
      for (const c of clients) c.close();
      if (proxy) expect(await proxy.stop()).toBe(0);
    });

    for (const backend of BACKENDS) {
      it(`${backend}: delivers 1,000 messages of one PublishStream once each, in order, to a Consume stream acknowledging in batches`, async () => {
        const c = client(backend);
        const topic = uniqueName('ordered').replace(/[^a-z0-9.-]/g, '');
        const consumer = c.consume({ topic, group: 'ordered', maxInFlight: 64 });
        const reader = consumeReader(consumer);
        // The group exists before anything is published (Kafka starts a new group at the end).
        await sleep(backend === 'kafka' ? 4_000 : 300);

        const writer = c.publishStream();
        const acks: Array<Promise<unknown>> = [];
        for (let i = 0; i < 1000; i++) {
          await writer.ready();
          acks.push(writer.publish({ topic, payload: Buffer.from(`m${i}`), messageId: `id-${i}` }));
        }
        expect(writer.windowSize).toBe(1024);
        await writer.end();
        const results = (await Promise.all(acks)) as Array<{ messageId: string; duplicate: boolean }>;
        expect(results.map((r) => r.messageId)).toEqual(Array.from({ length: 1000 }, (_, i) => `id-${i}`));
        expect(results.every((r) => !r.duplicate)).toBe(true);

        let acked = 0;
        await waitFor(
          '1,000 deliveries',
          () => {
            const ids = reader.received.slice(acked).map((d) => d.deliveryId);
            if (ids.length > 0) {
              c.ack(consumer, ids);
              acked += ids.length;
            }
            return reader.received.length >= 1000 || reader.failure !== undefined;
          },
          60_000,
        );
        await sleep(500); // nothing else arrives: no double, no redelivery
        consumer.cancel();
        expect(reader.failure?.message ?? '').not.toMatch(/NOT_FOUND|INVALID/);
        expect(reader.received.map((d) => Buffer.from(d.message!.payload).toString())).toEqual(
          Array.from({ length: 1000 }, (_, i) => `m${i}`),
        );
        expect(reader.received.every((d) => d.message!.attempt === 1)).toBe(true);
      }, 120_000);

      it(`${backend}: holds a stalled Consume stream at max_in_flight until it acknowledges`, async () => {
        const c = client(backend);
        const topic = uniqueName('stalled').replace(/[^a-z0-9.-]/g, '');
        const consumer = c.consume({ topic, group: 'stalled', maxInFlight: 5 });
        const reader = consumeReader(consumer);
        await sleep(backend === 'kafka' ? 4_000 : 300);
        await c.publishBatch({
          messages: Array.from({ length: 40 }, (_, i) => ({ topic, payload: Buffer.from(`s${i}`) })),
        });
        await waitFor('the first five deliveries', () => reader.received.length >= 5);
        await sleep(1_000);
        expect(reader.received.length).toBe(5);

        c.ack(
          consumer,
          reader.received.map((d) => d.deliveryId),
        );
        await waitFor('five more deliveries', () => reader.received.length >= 10);
        await sleep(1_000);
        expect(reader.received.length).toBe(10);
        expect(reader.received.map((d) => Buffer.from(d.message!.payload).toString())).toEqual(
          Array.from({ length: 10 }, (_, i) => `s${i}`),
        );
        consumer.cancel();
      }, 60_000);
    }

    /** Reads what a fresh group finds on a memstore topic through Consume, acknowledging as it goes. */
    async function drain(topic: string, expected: number): Promise<string[]> {
      const c = client('memstore');
      const consumer = c.consume({ topic, group: uniqueName('cli'), maxInFlight: 100 });
      const reader = consumeReader(consumer);
      let acked = 0;
      await waitFor(
        `${expected} deliveries`,
        () => {
          const ids = reader.received.slice(acked).map((d) => d.deliveryId);
          if (ids.length > 0) {
            c.ack(consumer, ids);
            acked += ids.length;
          }
          return reader.received.length >= expected;
        },
        10_000,
      );
      await sleep(300);
      consumer.cancel();
      return reader.received.map((d) => Buffer.from(d.message!.payload).toString());
    }

    it('prismctl publish --count 500 publishes the payload 500 times over one stream and reports 500 message ids', async () => {
      const topic = uniqueName('cli-count').replace(/[^a-z0-9.-]/g, '');
      const res = await runCli(
        ['publish', '-n', names.memstore, topic, 'same', '--count', '500', '--json', '--proxy', endpoint],
        { env: { PRISM_TOKEN: '' } },
      );
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      const out = JSON.parse(res.stdout) as { published: Array<{ messageId: string }>; failed: number };
      expect(out.failed).toBe(0);
      expect(out.published).toHaveLength(500);
      expect(new Set(out.published.map((p) => p.messageId)).size).toBe(500);
      expect(await drain(topic, 500)).toEqual(Array.from({ length: 500 }, () => 'same'));
    });

    it('prismctl publish --file - --lines publishes each line of stdin as one message, in order', async () => {
      const topic = uniqueName('cli-lines').replace(/[^a-z0-9.-]/g, '');
      const lines = Array.from({ length: 300 }, (_, i) => `line ${i}`);
      const res = await runCli(
        ['publish', '-n', names.memstore, topic, '--file', '-', '--lines', '--proxy', endpoint],
        { env: { PRISM_TOKEN: '' }, input: `${lines.join('\n')}\n` },
      );
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout.trim().split('\n')).toHaveLength(300);
      expect(await drain(topic, 300)).toEqual(lines);
    });

    it('acknowledges a refused message with its error and publishes the rest of the stream', async () => {
      const c = client('memstore');
      const writer = c.publishStream();
      const good = writer.publish({ payload: Buffer.from('a') });
      const bad = writer.publish({ topic: 'no spaces allowed', payload: Buffer.from('b') });
      const after = writer.publish({ payload: Buffer.from('c') });
      const refusal = await bad.then(
        () => undefined,
        (err: PrismError) => err,
      );
      expect(refusal?.code).toBe('E_INVALID_ARGUMENT');
      expect(refusal?.message).toContain('topic');
      await expect(good).resolves.toMatchObject({ duplicate: false });
      await expect(after).resolves.toMatchObject({ duplicate: false });
      await writer.end();
    });

    it('ends a PublishStream for a namespace the proxy does not serve with NOT_FOUND', async () => {
      const c = new DataClient(endpoint, { namespace: 'no-such-namespace' });
      clients.push(c);
      const writer = c.publishStream();
      const sent = writer.publish({ payload: Buffer.from('x') });
      const err = await sent.then(
        () => undefined,
        (e: PrismError) => e,
      );
      expect(err?.code).toBe('E_NOT_FOUND');
      await expect(writer.end()).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    });

    it('ends a Consume stream whose acknowledgement names no pending delivery with NOT_FOUND', async () => {
      const c = client('memstore');
      const consumer = c.consume({ group: 'strays' });
      const reader = consumeReader(consumer);
      await sleep(200);
      c.ack(consumer, ['999']);
      await waitFor('the stream to end', () => reader.failure !== undefined, 5_000);
      expect(reader.failure!.message).toContain('delivery 999 is not pending on this stream');
      expect((reader.failure as { code?: number }).code).toBe(5);
    });
  },
);
