import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { SubscribeResponse } from '../../src/gen/prism/data/v1/messaging_pb.js';
import { ensureBuilt } from '../support/cli.js';
import { firstSubscribeEvent } from '../support/first-event.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import {
  describeWithService,
  kafkaBrokers,
  natsUrl,
  postgresUrl,
  redisUrl,
  uniqueName,
} from '../support/services.js';

/**
 * Client → proxy → runner → driver → real backend, through the proxy only: the test never talks
 * to a backend directly.
 */
const dir = mkdtempSync(join(tmpdir(), 'prism-proxy-e2e-'));
mkdirSync(join(dir, 'ns'));
const names = {
  redis: uniqueName('kv-redis'),
  postgres: uniqueName('kv-pg'),
  kafka: uniqueName('msg-kafka'),
  nats: uniqueName('msg-nats'),
};

/** The test services' endpoints as an operator's backends catalog (no credentials in it). */
function writeCatalog(): { file: string; pgCredentials: string } {
  const pg = new URL(postgresUrl());
  const pgCredentials = `${decodeURIComponent(pg.username)}:${decodeURIComponent(pg.password)}`;
  pg.username = '';
  pg.password = '';
  const file = join(dir, 'backends.yaml');
  writeFileSync(
    file,
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
  return { file, pgCredentials };
}

function writeNamespaces(): void {
  const kv = (name: string, backend: string) =>
    `namespace: ${name}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: ${backend} }\n`;
  const messaging = (name: string, backend: string) =>
    `namespace: ${name}\nteam: platform\npatterns:\n  - name: events\n    type: producer\n    slots:\n      sink: { backend: ${backend} }\n    settings: { topic: orders, max_retries: 3 }\n  - name: worker\n    type: consumer\n    slots:\n      source: { backend: ${backend} }\n    settings: { topic: orders, consumer_group: billing, max_retries: 2, ack_timeout: 5s }\n`;
  writeFileSync(join(dir, 'ns', 'redis.yaml'), kv(names.redis, 'redis'));
  // PostgreSQL needs credentials: from the proxy's environment, never from the file or the catalog.
  writeFileSync(
    join(dir, 'ns', 'postgres.yaml'),
    kv(names.postgres, 'postgres').replace(
      '{ backend: postgres }',
      '{ backend: postgres, credentials: "${PRISM_E2E_PG_CREDENTIALS}" }',
    ),
  );
  writeFileSync(join(dir, 'ns', 'kafka.yaml'), messaging(names.kafka, 'kafka'));
  writeFileSync(join(dir, 'ns', 'nats.yaml'), messaging(names.nats, 'nats'));
}

let proxy: RunningServer;
let endpoint: string;

beforeAll(async () => {
  await ensureBuilt();
  writeNamespaces();
  const catalog = writeCatalog();
  proxy = await startPrismServer(
    [
      'proxy',
      'serve',
      '--namespaces',
      join(dir, 'ns'),
      '--backends',
      catalog.file,
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
    ],
    'prism proxy serving',
    { PRISM_E2E_PG_CREDENTIALS: catalog.pgCredentials },
  );
  endpoint = `127.0.0.1:${proxy.ready.port as number}`;
}, 120_000);

afterAll(async () => {
  expect(await proxy?.stop()).toBe(0);
});

for (const backend of ['redis', 'postgres'] as const) {
  await describeWithService(backend, `key-value through the proxy on ${backend}`, () => {
    it('round-trips a random binary value under a random key, with its TTL', async () => {
      const client = new DataClient(endpoint, { namespace: names[backend] });
      try {
        const key = `k/${randomBytes(6).toString('hex')}:é`;
        const value = randomBytes(4096);
        await client.set(key, value, 120);
        const got = await client.get(key);
        expect(got.found).toBe(true);
        expect(Buffer.from(got.value).equals(value)).toBe(true);
        const ttl = Number((await client.ttl(key)).ttlMs);
        expect(ttl).toBeGreaterThan(100_000);
        expect(ttl).toBeLessThanOrEqual(120_000);
        expect((await client.delete(key)).existed).toBe(true);
        expect((await client.get(key)).found).toBe(false);
      } finally {
        client.close();
      }
    });
  });
}

for (const backend of ['kafka', 'nats'] as const) {
  await describeWithService(backend, `producer → ${backend} → consumer through the proxy`, () => {
    it('delivers the payload and every envelope field, with the publisher’s session', async () => {
      const client = new DataClient(endpoint, { namespace: names[backend] });
      const stream = client.subscribe({ group: 'billing' });
      try {
        const first = new Promise<SubscribeResponse>((resolve, reject) => {
          stream.once('data', resolve);
          stream.once('error', reject);
        });
        const payload = randomBytes(512);
        const correlationId = uniqueName('corr');
        const published = await client.publish({
          payload,
          contentType: 'application/x-test',
          correlationId,
          headers: { 'order-id': '42', region: 'eu' },
        });
        const delivery = await first;
        const envelope = delivery.message!;
        expect(envelope.messageId).toBe(published.messageId);
        expect(envelope.messageId).toMatch(
          /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
        );
        expect(envelope.topic).toBe('orders');
        expect(envelope.namespace).toBe(names[backend]);
        expect(envelope.publishedAtMs).toBe(published.publishedAtMs);
        expect(envelope.contentType).toBe('application/x-test');
        expect(envelope.correlationId).toBe(correlationId);
        expect(envelope.headers).toEqual({ 'order-id': '42', region: 'eu' });
        expect(Buffer.from(envelope.payload).equals(payload)).toBe(true);
        expect(envelope.session?.subject).toBe('anonymous');
        expect(envelope.attempt).toBe(1);
        await client.acknowledge({
          subscriptionId: delivery.subscriptionId,
          deliveryId: delivery.deliveryId,
          success: true,
        });
      } finally {
        stream.cancel();
        client.close();
      }
    });
  });
}

describe('routing', () => {
  it('answers NOT_FOUND for a namespace the proxy does not serve', async () => {
    const client = new DataClient(endpoint, { namespace: 'no-such-namespace' });
    try {
      await expect(client.get('k')).rejects.toMatchObject({
        code: 'E_NOT_FOUND',
        message: "namespace 'no-such-namespace' is not served here",
      });
    } finally {
      client.close();
    }
  });

  it('answers INVALID_ARGUMENT when the namespace metadata is missing', async () => {
    const client = new DataClient(endpoint, { namespace: '' });
    try {
      await expect(client.get('k')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    } finally {
      client.close();
    }
  });

  it('ends a Subscribe for a namespace the proxy does not serve with NOT_FOUND at once', async () => {
    const client = new DataClient(endpoint, { namespace: 'no-such-namespace' });
    try {
      await expect(firstSubscribeEvent(client, 2000)).resolves.toMatchObject({
        code: 'E_NOT_FOUND',
        message: "namespace 'no-such-namespace' is not served here",
      });
    } finally {
      client.close();
    }
  });

  it('ends a Subscribe without namespace metadata with INVALID_ARGUMENT at once', async () => {
    const client = new DataClient(endpoint, { namespace: '' });
    try {
      await expect(firstSubscribeEvent(client, 2000)).resolves.toMatchObject({
        code: 'E_INVALID_ARGUMENT',
        message: 'missing x-prism-namespace metadata',
      });
    } finally {
      client.close();
    }
  });

  it('serves /readyz and /metrics with per-namespace request counts', async () => {
    const port = proxy.ready.httpPort as number;
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const ns = names.redis;
    const sample = async (series: string) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const ok = `prism_proxy_requests_total{namespace="${ns}",service="KeyValue",method="Get",code="OK"}`;
    const bad = `prism_proxy_requests_total{namespace="${ns}",service="KeyValue",method="Get",code="E_INVALID_ARGUMENT"}`;
    const timed = `prism_proxy_request_seconds_count{namespace="${ns}",service="KeyValue",method="Get"}`;
    const before = { ok: await sample(ok), bad: await sample(bad), timed: await sample(timed) };
    const client = new DataClient(endpoint, { namespace: ns });
    try {
      for (let i = 0; i < 3; i++) await client.get(`metrics/${i}`);
      await expect(client.get('')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    } finally {
      client.close();
    }
    expect(await sample(ok)).toBe(before.ok + 3);
    expect(await sample(bad)).toBe(before.bad + 1);
    expect(await sample(timed)).toBe(before.timed + 4);
  });
});
