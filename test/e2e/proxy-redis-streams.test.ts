/**
 * A consumer pattern on Redis Streams through the proxy only (client → proxy → runner → driver →
 * Redis): a message published while the group has no member is kept, and when a subscriber's
 * stream is cancelled with the message unacknowledged, the next subscriber of the group gets it
 * with attempt 2, long before the 30 s ack timeout.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { SubscribeResponse } from '../../src/gen/prism/data/v1/messaging_pb.js';
import { reader } from '../support/subscribe-reader.js';
import { ensureBuilt } from '../support/cli.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { describeWithService, redisUrl, uniqueName } from '../support/services.js';

const dir = mkdtempSync(join(tmpdir(), 'prism-redis-streams-e2e-'));
const namespace = uniqueName('streams');

let proxy: RunningServer | undefined;
let endpoint: string;

/**
 * Buffers a Subscribe stream from the start (a flowing stream drops what arrives while no one
 * listens); `next()` resolves with the next message or rejects with the stream's error.
 */
await describeWithService('redis', 'a Redis Streams consumer through the proxy', () => {
  beforeAll(async () => {
    await ensureBuilt();
    mkdirSync(join(dir, 'ns'));
    writeFileSync(
      join(dir, 'ns', 'streams.yaml'),
      [
        `namespace: ${namespace}`,
        'team: platform',
        'needs: { retention: 1h }',
        'patterns:',
        '  - name: events',
        '    type: producer',
        '    slots: { sink: { backend: redis } }',
        '    settings: { topic: orders }',
        '  - name: worker',
        '    type: consumer',
        '    slots: { source: { backend: redis } }',
        '    settings: { topic: orders, consumer_group: billing, max_retries: 5, ack_timeout: 30s }',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'backends.yaml'),
      `backends:\n  redis: [{ name: test, endpoint: "${redisUrl()}" }]\n`,
    );
    proxy = await startPrismServer(
      [
        'proxy',
        'serve',
        '--namespaces',
        join(dir, 'ns'),
        '--backends',
        join(dir, 'backends.yaml'),
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
      ],
      'prism proxy serving',
    );
    endpoint = `127.0.0.1:${proxy.ready.port as number}`;
  }, 120_000);

  afterAll(async () => {
    if (proxy) expect(await proxy.stop()).toBe(0);
  });

  it('keeps a message published before any subscriber, and hands it to the next subscriber when the first cancels without acknowledging', async () => {
    const client = new DataClient(endpoint, { namespace });
    try {
      const payload = randomBytes(64);
      const published = await client.publish({ payload, headers: { 'order-id': '7' } });

      const first = client.subscribe({ group: 'billing' });
      const held = await reader<SubscribeResponse>(first).next();
      expect(held.message!.messageId).toBe(published.messageId);
      expect(held.message!.attempt).toBe(1);
      const cancelledAt = Date.now();
      first.cancel();

      const second = client.subscribe({ group: 'billing' });
      const messages = reader<SubscribeResponse>(second);
      try {
        const redelivered = await messages.next();
        expect(Date.now() - cancelledAt).toBeLessThan(10_000);
        expect(redelivered.message!.messageId).toBe(published.messageId);
        expect(redelivered.message!.attempt).toBe(2);
        expect(redelivered.message!.headers).toEqual({ 'order-id': '7' });
        expect(Buffer.from(redelivered.message!.payload).equals(payload)).toBe(true);
        await client.acknowledge({
          subscriptionId: redelivered.subscriptionId,
          deliveryId: redelivered.deliveryId,
          success: true,
        });

        // Acknowledged: a later message is the next thing the group sees, not the old one again.
        const later = await client.publish({ payload: Buffer.from('later') });
        const after = await messages.next();
        expect(after.message!.messageId).toBe(later.messageId);
        expect(after.message!.attempt).toBe(1);
      } finally {
        second.cancel();
      }
    } finally {
      client.close();
    }
  });
});
