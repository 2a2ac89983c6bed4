/**
 * A consumer whose object store is down gets a claim-checked message redelivered later, not lost:
 * a payload is published through the proxy while a private SeaweedFS runs (Redis Streams carries
 * the claim), the store is killed, a subscriber is opened and gets nothing while the store is
 * down (each delivery fails to fetch the object and is redelivered), the store is started again
 * with the same data, and the subscriber gets the payload byte-exact with its content type, on a
 * later attempt. Its acknowledgement then deletes the object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { SubscribeResponse } from '../../src/gen/prism/data/v1/messaging_pb.js';
import { ensureBuilt } from '../support/cli.js';
import { privateS3, seaweedPresence, type PrivateS3 } from '../support/private-s3.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { describeIfPresent, probeService, redisUrl, uniqueName } from '../support/services.js';
import { reader } from '../support/subscribe-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'prism-claim-store-down-'));
const namespace = uniqueName('claims-down');
const BUCKET = 'prism-store-down';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const redis = await probeService('redis');
const presence = !seaweedPresence().ok ? seaweedPresence() : redis;

let store: PrivateS3 | undefined;
let proxy: RunningServer | undefined;

async function listClaims(): Promise<string[]> {
  const s3 = new S3Client({
    endpoint: store!.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: store!.accessKeyId, secretAccessKey: store!.secretAccessKey },
  });
  try {
    const listed = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${namespace}/claims/` }),
    );
    return (listed.Contents ?? []).map((o) => o.Key!).sort();
  } finally {
    s3.destroy();
  }
}

describeIfPresent('redis and a SeaweedFS binary', presence, 'claim check with the object store down', () => {
  beforeAll(async () => {
    await ensureBuilt();
    store = await privateS3();
    await store.start();
    mkdirSync(join(dir, 'ns'));
    const objects = `objects: { backend: s3, credentials: "\${PRISM_E2E_S3_CREDENTIALS}" }`;
    writeFileSync(
      join(dir, 'ns', `${namespace}.yaml`),
      [
        `namespace: ${namespace}`,
        'team: platform',
        'patterns:',
        '  - name: files',
        '    type: producer',
        `    slots: { sink: { backend: redis }, ${objects} }`,
        '    settings: { topic: files, claim_check: { threshold: 1KiB, ttl: 1d } }',
        '  - name: reader',
        '    type: consumer',
        `    slots: { source: { backend: redis }, ${objects} }`,
        // A failed fetch is a delivery, redelivered after min(ack_timeout, 5 s): 100 of them is
        // far more than the outage lasts.
        '    settings: { topic: files, consumer_group: readers, max_retries: 100, ack_timeout: 2s, claim_check: {} }',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'backends.yaml'),
      [
        'backends:',
        `  redis: [{ name: test, endpoint: "${redisUrl()}" }]`,
        `  s3: [{ name: private, endpoint: "${store.endpoint}/${BUCKET}?region=us-east-1" }]`,
        '',
      ].join('\n'),
    );
    proxy = await startProxy({ namespaces: join(dir, 'ns'), backends: join(dir, 'backends.yaml') }, [], {
      PRISM_E2E_S3_CREDENTIALS: `${store.accessKeyId}:${store.secretAccessKey}`,
    });
  }, 180_000);

  afterAll(async () => {
    if (proxy) expect(await proxy.stop()).toBe(0);
    await store?.kill();
  });

  it('redelivers a claimed message once its object store is back, byte-exact, and then deletes the object', async () => {
    const endpoint = `127.0.0.1:${proxy!.ready.port as number}`;
    const client = new DataClient(endpoint, { namespace });
    const payload = randomBytes(200_000);
    const { messageId } = await client.publish({ payload, contentType: 'application/x-kept' });
    const key = `${namespace}/claims/${sha256(payload)}/${messageId}`;
    expect(await listClaims()).toEqual([key]);

    await store!.kill();
    const stream = client.subscribe({ group: 'readers' });
    const messages = reader<SubscribeResponse>(stream);
    try {
      let early: SubscribeResponse | undefined;
      const next = messages.next().then((got) => (early = got));
      await sleep(5_000);
      // Nothing reached the subscriber while the store was down.
      expect(early).toBeUndefined();

      await store!.start();
      const got = await next;
      expect(got.message!.messageId).toBe(messageId);
      expect(got.message!.contentType).toBe('application/x-kept');
      expect(sha256(got.message!.payload)).toBe(sha256(payload));
      expect(got.message!.attempt).toBeGreaterThan(1);
      await client.acknowledge({
        subscriptionId: got.subscriptionId,
        deliveryId: got.deliveryId,
        success: true,
      });
      expect(await listClaims()).toEqual([]);
    } finally {
      stream.cancel();
      client.close();
    }
  }, 180_000);
});
