/**
 * The postgres queue's consumer when its connections go silent (a network partition, a server
 * that stops answering without closing its sockets): each claim query is bounded by the operation
 * deadline, so the consumer moves on to fresh connections and keeps delivering instead of waiting
 * forever on a query that will never answer.
 *
 * A loopback relay in front of the real PostgreSQL stands in for the partition: `freeze()` stops
 * forwarding on every connection open at that moment, without closing it; later connections pass.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Delivery, Subscription } from '../../../src/drivers/interfaces.js';
import { DEFAULT_OPERATION_TIMEOUT_MS } from '../../../src/drivers/messaging-support.js';
import { createPostgresQueue, type PostgresQueue } from '../../../src/drivers/postgres/queue.js';
import { describeWithService, postgresUrl, uniqueName } from '../../support/services.js';

interface Relay {
  url: string;
  /** Stops forwarding on every open connection (leaving it open); returns how many. */
  freeze(): number;
  close(): Promise<void>;
}

async function startRelay(target: URL): Promise<Relay> {
  const pairs: Array<[Socket, Socket]> = [];
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const url = new URL(target.toString());
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    freeze() {
      const open = pairs.splice(0).filter(([c, u]) => !c.destroyed && !u.destroyed);
      for (const [client, upstream] of open) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
        pairs.push([client, upstream]);
      }
      return open.length;
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

await describeWithService('postgres', 'postgres queue consumer on connections that go silent', () => {
  const namespace = uniqueName('silentq');
  const topic = 'orders';
  let relay: Relay;
  let consumerSide: PostgresQueue;
  let producerSide: PostgresQueue;
  let subscription: Subscription | undefined;

  beforeAll(async () => {
    relay = await startRelay(new URL(postgresUrl()));
    consumerSide = createPostgresQueue({ endpoint: relay.url, namespace });
    producerSide = createPostgresQueue({ endpoint: postgresUrl(), namespace });
    await consumerSide.connect();
    await producerSide.connect();
  });

  afterAll(async () => {
    await subscription?.close();
    // Closing the relay ends the frozen connections, so the pool can release them.
    await relay?.close();
    await consumerSide?.close();
    await producerSide?.close();
  });

  it('delivers a message published after its connections froze, on fresh connections', async () => {
    const received: string[] = [];
    let arrived: (() => void) | undefined;
    subscription = await consumerSide.consume(topic, 'workers', async (delivery: Delivery) => {
      received.push(new TextDecoder().decode(delivery.payload));
      await delivery.ack();
      arrived?.();
    });
    const waitFor = (n: number, ms: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(new Error(`${received.length} of ${n} messages after ${ms} ms: ${received.join(',')}`)),
          ms,
        );
        arrived = () => {
          if (received.length < n) return;
          clearTimeout(timer);
          resolve();
        };
        arrived();
      });

    await producerSide.enqueue({ topic, payload: text('before'), headers: {} });
    await waitFor(1, 10_000);

    const frozen = relay.freeze();
    expect(frozen).toBeGreaterThan(0);
    await producerSide.enqueue({ topic, payload: text('after'), headers: {} });
    // Every frozen connection costs at most one claim's deadline before the pool opens a new one.
    await waitFor(2, (frozen + 1) * DEFAULT_OPERATION_TIMEOUT_MS + 5_000);
    expect(received).toEqual(['before', 'after']);
  }, 120_000);
});
