/**
 * A backend killed and restarted in the middle of a PublishStream, seen only through the proxy:
 * the producer retries its batches until the backend is back, every message of the stream is
 * acknowledged, and a consumer then finds each exactly once (attempt 1), in stream order. Each
 * backend is a private server of this test (private-redis.ts, private-backends.ts); the shared
 * test services are never restarted. memstore lives in the proxy (nothing to restart) and sqlite
 * has no messaging.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt } from '../support/cli.js';
import {
  MESSAGING_BACKENDS as BACKENDS,
  messagingServersPresence,
  privateMessagingBackends,
  type MessagingBackend as Backend,
  type PrivateMessagingBackends,
} from '../support/private-backends.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { describeIfPresent, uniqueName } from '../support/services.js';
import { consumeReader, sleep, streamNamespaceYaml, waitFor } from './support-streams.js';

const MESSAGES = 3000;

const presence = messagingServersPresence();

describeIfPresent(
  'private nats-server and PostgreSQL',
  presence,
  'a backend restart in the middle of a PublishStream',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-stream-restart-'));
    const names = Object.fromEntries(BACKENDS.map((b) => [b, uniqueName(`restart-${b}`)])) as Record<
      Backend,
      string
    >;
    let backends: PrivateMessagingBackends | undefined;
    let proxy: RunningServer | undefined;
    let endpoint: string;

    beforeAll(async () => {
      await ensureBuilt();
      backends = await privateMessagingBackends(dir);
      mkdirSync(join(dir, 'ns'));
      for (const backend of BACKENDS) {
        writeFileSync(
          join(dir, 'ns', `${backend}.yaml`),
          streamNamespaceYaml(
            names[backend],
            backend,
            { max_retries: 100 },
            backend === 'postgres' ? '${PRISM_E2E_PG_CREDENTIALS}' : undefined,
          ),
        );
      }
      proxy = await startProxy({ namespaces: join(dir, 'ns'), backends: backends.backendsFile }, [], {
        PRISM_E2E_PG_CREDENTIALS: 'postgres:unused',
      });
      endpoint = `127.0.0.1:${proxy.ready.port as number}`;
    }, 120_000);

    afterAll(async () => {
      if (proxy) expect(await proxy.stop()).toBe(0);
      await backends?.stop();
    });

    for (const backend of BACKENDS) {
      it(`${backend}: loses and doubles no message of a stream across a backend restart`, async () => {
        const client = new DataClient(endpoint, { namespace: names[backend], timeoutMs: 20_000 });
        try {
          const topic = uniqueName('restart').replace(/[^a-z0-9.-]/g, '');
          const writer = client.publishStream();
          const acks: Array<Promise<{ messageId: string }>> = [];
          let restart: Promise<void> | undefined;
          let inFlightAtKill = 0;
          let backAt = 0;
          for (let i = 0; i < MESSAGES; i++) {
            await writer.ready();
            const ack = writer.publish({ topic, payload: Buffer.from(`r${i}`), messageId: `r-${i}` });
            ack.catch(() => undefined);
            acks.push(ack);
            if (i === 1000) {
              inFlightAtKill = writer.unacknowledged;
              restart = (async () => {
                await backends!.servers[backend].kill();
                await sleep(1_500);
                await backends!.servers[backend].start();
                backAt = Date.now();
              })();
            }
          }
          await restart;
          await writer.end();
          const endedAt = Date.now();
          const results = await Promise.all(acks);
          expect(results.map((r) => r.messageId)).toEqual(
            Array.from({ length: MESSAGES }, (_, i) => `r-${i}`),
          );
          // The kill hit the stream: messages were in flight, the producer retried while the
          // backend was down, and the stream finished only after it was back.
          expect(inFlightAtKill).toBeGreaterThan(0);
          expect(endedAt).toBeGreaterThanOrEqual(backAt);
          const retries = proxy!
            .logs()
            .split('\n')
            .filter((l) => l.includes('backend down; retrying') && l.includes(names[backend]));
          expect(retries.length).toBeGreaterThan(0);

          const consumer = client.consume({ topic, group: 'after-restart', maxInFlight: 256 });
          const reader = consumeReader(consumer);
          let acked = 0;
          await waitFor(
            `${MESSAGES} deliveries`,
            () => {
              const ids = reader.received.slice(acked).map((d) => d.deliveryId);
              if (ids.length > 0) {
                client.ack(consumer, ids);
                acked += ids.length;
              }
              return reader.received.length >= MESSAGES || reader.failure !== undefined;
            },
            60_000,
          );
          await sleep(1_000); // nothing more: no message was stored twice
          consumer.cancel();
          const payloads = reader.received.map((d) => Buffer.from(d.message!.payload).toString());
          expect(payloads).toEqual(Array.from({ length: MESSAGES }, (_, i) => `r${i}`));
          expect(reader.received.filter((d) => d.message!.attempt !== 1)).toEqual([]);
        } finally {
          client.close();
        }
      }, 180_000);
    }
  },
);
