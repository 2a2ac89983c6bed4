/**
 * Claim check through the proxy only (client → proxy → producer runner → SeaweedFS + Kafka / NATS /
 * Redis Streams → consumer runner → client): payloads of 0 bytes, threshold − 1, threshold,
 * threshold + 1 and 2 MiB (and 100 MiB on Redis Streams) arrive byte-exact with their content type;
 * the queue carries a claim, the bytes sit in the real S3-compatible store until every declared
 * consumer group acknowledged, then they are gone (ListObjectsV2); a Publish above the proxy's
 * --max-message-size gets RESOURCE_EXHAUSTED with both sizes. The Python example client
 * (grpcio) publishes and consumes 20 MiB through the same proxy. PublishUpload (chunked publish):
 * 100 MiB keeps the proxy's RSS within 64 MiB of idle; uploads without an announced hash end up
 * under their content hash; `publish --file` uses it; wrong sizes, hashes and limits are refused.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { isPrismError } from '../../src/errors.js';
import type { SubscribeResponse } from '../../src/gen/prism/data/v1/messaging_pb.js';
import { reader } from '../support/subscribe-reader.js';
import { ensureBuilt, REPO_ROOT, runCli } from '../support/cli.js';
import { startProxy, waitUntilServed, type RunningServer } from '../support/server-process.js';
import {
  describeWithServices,
  kafkaBrokers,
  natsUrl,
  redisUrl,
  s3Client,
  s3Config,
  uniqueName,
} from '../support/services.js';

const dir = mkdtempSync(join(tmpdir(), 'prism-claim-check-e2e-'));
const THRESHOLD = 256 * 1024;
const MAX_MESSAGE = 128 * 1024 * 1024;
const BUCKET = 'prism-e2e-claims';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const BACKENDS = [
  { backend: 'kafka', compression: 'none', namespace: uniqueName('claims-kafka') },
  { backend: 'nats', compression: 'gzip', namespace: uniqueName('claims-nats') },
  { backend: 'redis', compression: 'zstd', namespace: uniqueName('claims-redis') },
] as const;
/** The same backends with a second consumer group (pattern `auditor`, group `auditors`). */
const TWO_GROUPS = BACKENDS.map((b) => ({ ...b, namespace: uniqueName(`claims2-${b.backend}`) }));
const SUFFIX: Record<string, string> = { none: '', gzip: '.gz', zstd: '.zst' };
/** The Python client's namespace: Redis Streams, redelivery 2 s after a delivery is dropped. */
const PYTHON_NAMESPACE = uniqueName('claims-py');

let proxy: RunningServer | undefined;
let endpoint: string;

function namespaceYaml(backend: string, compression: string, namespace: string, auditors = false): string {
  const auditor = [
    '  - name: auditor',
    '    type: consumer',
    `    slots: { source: { backend: ${backend} }, objects: { backend: s3, credentials: "\${PRISM_E2E_S3_CREDENTIALS}" } }`,
    '    settings: { topic: files, consumer_group: auditors, max_retries: 5, ack_timeout: 60s, claim_check: {} }',
  ];
  return [
    `namespace: ${namespace}`,
    'team: platform',
    'patterns:',
    '  - name: files',
    '    type: producer',
    `    slots: { sink: { backend: ${backend} }, objects: { backend: s3, credentials: "\${PRISM_E2E_S3_CREDENTIALS}" } }`,
    `    settings: { topic: files, max_message_size: 100MiB, claim_check: { threshold: ${THRESHOLD}B, compression: ${compression}, ttl: 1d } }`,
    '  - name: reader',
    '    type: consumer',
    `    slots: { source: { backend: ${backend} }, objects: { backend: s3, credentials: "\${PRISM_E2E_S3_CREDENTIALS}" } }`,
    '    settings: { topic: files, consumer_group: readers, max_retries: 5, ack_timeout: 60s, claim_check: {} }',
    ...(auditors ? auditor : []),
    '',
  ].join('\n');
}

/** Every key under the namespace's `claims/` in the bucket, sorted. */
async function listClaims(namespace: string): Promise<string[]> {
  const s3 = s3Client();
  try {
    const listed = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${namespace}/claims/` }),
    );
    return (listed.Contents ?? []).map((object) => object.Key!).sort();
  } finally {
    s3.destroy();
  }
}

/** Resident set of a process in bytes (Linux). */
function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

await describeWithServices(['s3', 'kafka', 'nats', 'redis'], 'claim check through the proxy', () => {
  beforeAll(async () => {
    await ensureBuilt();
    mkdirSync(join(dir, 'ns'));
    for (const { backend, compression, namespace } of BACKENDS) {
      writeFileSync(join(dir, 'ns', `${namespace}.yaml`), namespaceYaml(backend, compression, namespace));
    }
    writeFileSync(
      join(dir, 'ns', `${PYTHON_NAMESPACE}.yaml`),
      namespaceYaml('redis', 'gzip', PYTHON_NAMESPACE).replace('ack_timeout: 60s', 'ack_timeout: 2s'),
    );
    for (const { backend, compression, namespace } of TWO_GROUPS) {
      writeFileSync(
        join(dir, 'ns', `${namespace}.yaml`),
        namespaceYaml(backend, compression, namespace, true),
      );
    }
    const s3 = s3Config();
    writeFileSync(
      join(dir, 'backends.yaml'),
      [
        'backends:',
        `  redis: [{ name: test, endpoint: "${redisUrl()}" }]`,
        `  nats: [{ name: test, endpoint: "${natsUrl()}" }]`,
        `  kafka: [{ name: test, endpoint: "kafka://${kafkaBrokers().join(',')}" }]`,
        `  s3: [{ name: test, endpoint: "${s3.endpoint}/${BUCKET}?region=${s3.region}" }]`,
        '',
      ].join('\n'),
    );
    proxy = await startProxy(
      { namespaces: join(dir, 'ns'), backends: join(dir, 'backends.yaml') },
      ['--max-message-size', `${MAX_MESSAGE}B`],
      { PRISM_E2E_S3_CREDENTIALS: `${s3.accessKeyId}:${s3.secretAccessKey}` },
    );
    endpoint = `127.0.0.1:${proxy.ready.port as number}`;
    // Seven namespaces start side by side; one whose backend failed it is tried again.
    await waitUntilServed(proxy, [...[...BACKENDS, ...TWO_GROUPS].map((b) => b.namespace), PYTHON_NAMESPACE]);
  }, 180_000);

  afterAll(async () => {
    if (proxy) expect(await proxy.stop()).toBe(0);
  });

  // First, while the proxy is fresh: a whole-payload Publish later grows its heap, and that slack
  // would hide what an upload costs.
  it('keeps the proxy within 64 MiB above its idle RSS while a 100 MiB payload is uploaded in pieces, and delivers it byte-exact on Redis Streams', async () => {
    const { namespace } = BACKENDS[2];
    const client = new DataClient(endpoint, { namespace });
    const payload = randomBytes(100 * 1024 * 1024);
    const idle = rssBytes(proxy!.pid);
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(proxy!.pid))), 10);
    const started = Date.now();
    let messageId: string;
    try {
      ({ messageId } = await client.publishUpload({ contentType: 'application/octet-stream' }, payload));
    } finally {
      clearInterval(sampler);
    }
    const publishMs = Date.now() - started;
    console.log(
      `[claim-check e2e] 100 MiB PublishUpload: ${publishMs} ms; proxy RSS idle ${(idle / 2 ** 20).toFixed(1)} MiB, peak while publishing ${(peak / 2 ** 20).toFixed(1)} MiB (+${((peak - idle) / 2 ** 20).toFixed(1)} MiB)`,
    );
    // Subscribed only now, so that the delivery (whole, on Subscribe) is not sampled above.
    const stream = client.subscribe({ group: 'readers' });
    const messages = reader<SubscribeResponse>(stream);
    try {
      const got = await messages.next();
      expect(got.message!.messageId).toBe(messageId);
      expect(got.message!.payload.byteLength).toBe(payload.byteLength);
      expect(sha256(got.message!.payload)).toBe(sha256(payload));
      expect(got.message!.contentType).toBe('application/octet-stream');
      await client.acknowledge({
        subscriptionId: got.subscriptionId,
        deliveryId: got.deliveryId,
        success: true,
      });
      expect(await listClaims(namespace)).toEqual([]);
      expect(peak - idle).toBeLessThan(64 * 1024 * 1024);
    } finally {
      stream.cancel();
      client.close();
    }
  }, 180_000);

  for (const { backend, namespace } of BACKENDS) {
    it(`delivers payloads around the threshold and of 2 MiB byte-exact with their content type on ${backend}`, async () => {
      const client = new DataClient(endpoint, { namespace });
      const stream = client.subscribe({ group: 'readers' });
      try {
        const messages = reader<SubscribeResponse>(stream);
        const sizes = [0, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 2 * 1024 * 1024];
        const sent = new Map<string, { payload: Buffer; contentType: string }>();
        for (const [i, size] of sizes.entries()) {
          const payload = randomBytes(size);
          const contentType = `application/x-e2e-${i}`;
          const { messageId } = await client.publish({ payload, contentType });
          sent.set(messageId, { payload, contentType });
        }
        for (let i = 0; i < sizes.length; i++) {
          const got = await messages.next();
          const expected = sent.get(got.message!.messageId)!;
          expect(got.message!.contentType).toBe(expected.contentType);
          expect(got.message!.payload.byteLength).toBe(expected.payload.byteLength);
          expect(sha256(got.message!.payload)).toBe(sha256(expected.payload));
          expect(got.message!.headers).toEqual({});
          await client.acknowledge({
            subscriptionId: got.subscriptionId,
            deliveryId: got.deliveryId,
            success: true,
          });
        }
        // The two payloads above the threshold were objects under the namespace's prefix; the
        // only declared group acknowledged them, so they and their markers are gone.
        expect(await listClaims(namespace)).toEqual([]);
      } finally {
        stream.cancel();
        client.close();
      }
    }, 120_000);
  }

  for (const { backend, compression, namespace } of TWO_GROUPS) {
    it(`keeps an object until both declared groups acknowledged, and an equal payload's object through the first message's acks, on ${backend}`, async () => {
      const producer = new DataClient(endpoint, { namespace });
      const readers = new DataClient(endpoint, { namespace, pattern: 'reader' });
      const auditors = new DataClient(endpoint, { namespace, pattern: 'auditor' });
      const readerStream = readers.subscribe({});
      const auditorStream = auditors.subscribe({});
      try {
        const fromReaders = reader<SubscribeResponse>(readerStream);
        const fromAuditors = reader<SubscribeResponse>(auditorStream);
        const payload = randomBytes(THRESHOLD + 1);
        const first = (await producer.publish({ payload, contentType: 'application/x-first' })).messageId;
        const second = (await producer.publish({ payload, contentType: 'application/x-second' })).messageId;
        const key = (id: string) => `${namespace}/claims/${sha256(payload)}/${id}${SUFFIX[compression]}`;
        const all = (id: string) => [key(id), `${key(id)}.groups/auditors`, `${key(id)}.groups/readers`];
        expect(await listClaims(namespace)).toEqual([...all(first), ...all(second)].sort());

        const ack = async (client: DataClient, got: SubscribeResponse) =>
          client.acknowledge({
            subscriptionId: got.subscriptionId,
            deliveryId: got.deliveryId,
            success: true,
          });
        const check = (got: SubscribeResponse, id: string, contentType: string) => {
          expect(got.message!.messageId).toBe(id);
          expect(got.message!.contentType).toBe(contentType);
          expect(sha256(got.message!.payload)).toBe(sha256(payload));
        };

        // readers acknowledge the first message: its object waits for auditors.
        const r1 = await fromReaders.next();
        check(r1, first, 'application/x-first');
        await ack(readers, r1);
        expect(await listClaims(namespace)).toEqual(
          [key(first), `${key(first)}.groups/auditors`, ...all(second)].sort(),
        );
        // auditors acknowledge it too: gone; the second message's object (equal bytes) stays.
        const a1 = await fromAuditors.next();
        check(a1, first, 'application/x-first');
        await ack(auditors, a1);
        expect(await listClaims(namespace)).toEqual(all(second).sort());

        // The second message still opens for both groups, then its object goes as well.
        const r2 = await fromReaders.next();
        check(r2, second, 'application/x-second');
        await ack(readers, r2);
        const a2 = await fromAuditors.next();
        check(a2, second, 'application/x-second');
        expect(await listClaims(namespace)).toEqual([key(second), `${key(second)}.groups/auditors`]);
        await ack(auditors, a2);
        expect(await listClaims(namespace)).toEqual([]);
      } finally {
        readerStream.cancel();
        auditorStream.cancel();
        for (const client of [producer, readers, auditors]) client.close();
      }
    }, 120_000);
  }

  it('lets the Python client publish and consume a 20 MiB payload once its channel allows it, and upload one in frames, after which the objects are gone', async () => {
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, 'examples/clients/python/run.sh'),
      ['--large', endpoint, PYTHON_NAMESPACE, '20'],
      { timeout: 300_000 },
    );
    const [refused, ...rest] = stdout.trim().split('\n');
    // grpcio's default 4 MiB receive limit refuses the delivery (payload plus envelope)...
    const size =
      /^default channel: RESOURCE_EXHAUSTED: .*Received message larger than max \((\d+) vs\. 4194304\)/.exec(
        refused!,
      );
    expect(size, refused).not.toBeNull();
    expect(Number(size![1])).toBeGreaterThan(20 * 1024 * 1024);
    // ...and a channel with raised limits gets the redelivery byte-exact; a PublishUpload too.
    expect(rest).toEqual([
      'large ok: 20971520 bytes byte-exact, application/x-python-large, attempt 2',
      'upload ok: 20971520 bytes byte-exact in 80 frames',
    ]);
    expect(await listClaims(PYTHON_NAMESPACE)).toEqual([]);
  }, 320_000);

  for (const { backend, compression, namespace } of BACKENDS) {
    it(`delivers a payload uploaded in pieces without an announced hash byte-exact, under its content-addressed key, on ${backend} (${compression})`, async () => {
      const client = new DataClient(endpoint, { namespace });
      const stream = client.subscribe({ group: 'readers' });
      try {
        const messages = reader<SubscribeResponse>(stream);
        const payload = randomBytes(3 * 1024 * 1024 + 17);
        async function* pieces() {
          for (let i = 0; i < payload.byteLength; i += 100_000) yield payload.subarray(i, i + 100_000);
        }
        const { messageId } = await client.publishUpload(
          { contentType: 'application/x-pieces', headers: { part: 'all' }, size: payload.byteLength },
          pieces(),
        );
        // Stored once under claims/<sha256>/<id>; the pending upload was renamed. The topic's one
        // group needs no marker.
        expect(await listClaims(namespace)).toEqual([
          `${namespace}/claims/${sha256(payload)}/${messageId}${SUFFIX[compression]}`,
        ]);
        const got = await messages.next();
        expect(got.message!.messageId).toBe(messageId);
        expect(got.message!.contentType).toBe('application/x-pieces');
        expect(got.message!.headers).toEqual({ part: 'all' });
        expect(sha256(got.message!.payload)).toBe(sha256(payload));
        await client.acknowledge({
          subscriptionId: got.subscriptionId,
          deliveryId: got.deliveryId,
          success: true,
        });
        expect(await listClaims(namespace)).toEqual([]);
      } finally {
        stream.cancel();
        client.close();
      }
    }, 120_000);
  }

  it('publish --file sends a file above 1 MiB in pieces (PublishUpload): stored under its content hash, delivered byte-exact', async () => {
    const { namespace } = BACKENDS[0];
    const payload = randomBytes(6 * 1024 * 1024 + 5);
    const file = join(dir, 'large.bin');
    writeFileSync(file, payload);
    const client = new DataClient(endpoint, { namespace });
    const stream = client.subscribe({ group: 'readers' });
    const messages = reader<SubscribeResponse>(stream);
    try {
      const result = await runCli([
        'publish',
        '--proxy',
        endpoint,
        '--namespace',
        namespace,
        'files',
        '--file',
        file,
        '--content-type',
        'application/x-cli-file',
        '--json',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const { published, failed } = JSON.parse(result.stdout) as {
        published: Array<{ messageId: string }>;
        failed: number;
      };
      expect(failed).toBe(0);
      expect(published).toHaveLength(1);
      const messageId = published[0]!.messageId;
      expect(await listClaims(namespace)).toEqual([`${namespace}/claims/${sha256(payload)}/${messageId}`]);
      const got = await messages.next();
      expect(got.message!.messageId).toBe(messageId);
      expect(got.message!.contentType).toBe('application/x-cli-file');
      expect(sha256(got.message!.payload)).toBe(sha256(payload));
      await client.acknowledge({
        subscriptionId: got.subscriptionId,
        deliveryId: got.deliveryId,
        success: true,
      });
      expect(await listClaims(namespace)).toEqual([]);
    } finally {
      stream.cancel();
      client.close();
    }
  }, 120_000);

  it('refuses an upload that announces more than --max-payload-size or max_message_size, or sends other bytes than it announced, and stores nothing', async () => {
    const { namespace } = BACKENDS[0];
    const client = new DataClient(endpoint, { namespace });
    try {
      const nothing = (async function* () {})();
      const overProxy = await client
        .publishUpload({ size: 256 * 1024 * 1024 + 1 }, nothing)
        .catch((e: unknown) => e);
      expect(isPrismError(overProxy) && overProxy.code).toBe('E_PAYLOAD_TOO_LARGE');
      expect((overProxy as Error).message).toBe(
        "payload is 268435457 bytes; the proxy's limit is 268435456 bytes (--max-payload-size)",
      );
      const overSetting = await client
        .publishUpload({ size: 100 * 1024 * 1024 + 1 }, (async function* () {})())
        .catch((e: unknown) => e);
      expect(isPrismError(overSetting) && overSetting.code).toBe('E_PAYLOAD_TOO_LARGE');
      expect((overSetting as Error).message).toBe(
        'payload is 104857601 bytes; the limit is 100MiB (104857600 bytes, setting max_message_size)',
      );
      const payload = randomBytes(THRESHOLD * 4);
      const short = await client
        .publishUpload(
          { size: payload.byteLength + 1 },
          (async function* () {
            yield payload;
          })(),
        )
        .catch((e: unknown) => e);
      expect(isPrismError(short) && short.code).toBe('E_INVALID_ARGUMENT');
      expect((short as Error).message).toBe(
        `the upload announced ${payload.byteLength + 1} bytes and sent ${payload.byteLength}; nothing was published`,
      );
      const wrongHash = await client
        .publishUpload({ sha256: sha256(Buffer.from('other')) }, payload)
        .catch((e: unknown) => e);
      expect(isPrismError(wrongHash) && wrongHash.code).toBe('E_INVALID_ARGUMENT');
      expect(await listClaims(namespace)).toEqual([]);
    } finally {
      client.close();
    }
  }, 120_000);

  it("refuses a payload above the producer's max_message_size and one above --max-message-size with RESOURCE_EXHAUSTED and the numbers", async () => {
    const client = new DataClient(endpoint, { namespace: BACKENDS[0].namespace });
    try {
      const overSetting = await client
        .publish({ payload: Buffer.alloc(100 * 1024 * 1024 + 1) })
        .catch((e: unknown) => e);
      expect(isPrismError(overSetting) && overSetting.code).toBe('E_PAYLOAD_TOO_LARGE');
      expect((overSetting as Error).message).toBe(
        'payload is 104857601 bytes; the limit is 100MiB (104857600 bytes, setting max_message_size)',
      );
      const overProxy = await client
        .publish({ payload: Buffer.alloc(MAX_MESSAGE + 1) })
        .catch((e: unknown) => e);
      expect(isPrismError(overProxy) && overProxy.code).toBe('E_PAYLOAD_TOO_LARGE');
      expect((overProxy as Error).message).toMatch(
        new RegExp(`larger than max \\(\\d+ vs ${MAX_MESSAGE}\\)`),
      );
    } finally {
      client.close();
    }
  }, 120_000);
});

it('refuses a --max-message-size that is not a size from 1KiB to 2GiB, before serving anything', async () => {
  await ensureBuilt();
  const args = ['proxy', 'serve', '--listen', '127.0.0.1:0', '--namespaces', join(dir, 'none')];
  const result = await runCli([...args, '--max-message-size', '4GiB']);
  expect(result.code).toBe(2);
  expect(result.stderr).toBe(
    'error E_USAGE: --max-message-size "4GiB" is not a size from 1KiB to 2GiB\n  hint: for example --max-message-size 256MiB\n',
  );
});
