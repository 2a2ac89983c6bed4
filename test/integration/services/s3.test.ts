/**
 * The S3 test service (SeaweedFS from `scripts/test-services.sh up s3`): a bucket is created, an
 * object round-trips byte-exact with its metadata and a ranged read, anonymous and wrongly signed
 * requests are refused, and every listener is bound to loopback.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { describeWithService, s3Client, s3Config, uniqueName } from '../../support/services.js';

await describeWithService('s3', 'S3 test service (SeaweedFS)', () => {
  const s3 = s3Client();
  const bucket = uniqueName('prism-smoke');

  afterAll(() => s3.destroy());

  it('creates a bucket and round-trips an object with its metadata and a byte range', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const body = randomBytes(3 * 1024 * 1024 + 17);
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'a/b.bin',
        Body: body,
        Metadata: { 'prism-sha256': 'abc' },
      }),
    );
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'a/b.bin' }));
    expect(head.ContentLength).toBe(body.byteLength);
    expect(head.Metadata).toEqual({ 'prism-sha256': 'abc' });
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'a/b.bin' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    const range = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: 'a/b.bin', Range: 'bytes=10-19' }),
    );
    expect(Buffer.from(await range.Body!.transformToByteArray()).equals(body.subarray(10, 20))).toBe(true);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'a/b.bin' }));
    const missing = await s3
      .send(new HeadObjectCommand({ Bucket: bucket, Key: 'a/b.bin' }))
      .catch((e: unknown) => e);
    expect((missing as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(404);
  });

  // Every bucket is a SeaweedFS collection with volumes of its own; the suite and the benches
  // create dozens, and the store once ran out of volume slots at the fifth.
  it('accepts writes into a dozen new buckets', async () => {
    const buckets = Array.from({ length: 12 }, (_, i) => uniqueName(`prism-many-${i}`));
    try {
      for (const name of buckets) {
        await s3.send(new CreateBucketCommand({ Bucket: name }));
        await s3.send(new PutObjectCommand({ Bucket: name, Key: 'k', Body: randomBytes(1024) }));
      }
    } finally {
      for (const name of buckets) {
        await s3.send(new DeleteObjectCommand({ Bucket: name, Key: 'k' })).catch(() => undefined);
        await s3.send(new DeleteBucketCommand({ Bucket: name })).catch(() => undefined);
      }
    }
  });

  it('refuses anonymous requests and a wrong secret', async () => {
    const anonymous = await fetch(`${s3Config().endpoint}/`);
    expect(anonymous.status).toBe(403);
    const config = s3Config();
    const wrong = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: 'not-the-secret' },
    });
    try {
      const err = await wrong.send(new ListBucketsCommand({})).catch((e: unknown) => e);
      expect((err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(403);
    } finally {
      wrong.destroy();
    }
  });

  it('listens on loopback only', () => {
    const port = new URL(s3Config().endpoint).port;
    const owner = execFileSync('ss', ['-Hltnp', `( sport = :${port} )`], { encoding: 'utf8' });
    const pid = /pid=(\d+)/.exec(owner)![1];
    const listeners = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(`pid=${pid},`))
      .map((l) => l.trim().split(/\s+/)[3]!);
    expect(listeners.length).toBeGreaterThanOrEqual(4);
    for (const address of listeners)
      expect(address, address).toMatch(/^(127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):\d+$/);
  });
});
