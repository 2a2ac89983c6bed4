/**
 * A finished ioredis pipeline lets go of its commands and replies (src/drivers/redis/
 * pipeline-release-fix.ts): ioredis pins every pipeline until the next full collection, so what
 * it still refers to once settled is promoted. Explicit pipelines, transactions and auto-pipelined
 * commands still answer as ioredis's own do.
 */
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { releaseFinishedIoredisPipelines } from '../../../src/drivers/redis/pipeline-release-fix.js';
import { describeWithService, redisUrl, uniqueName } from '../../support/services.js';

interface PipelineInternals {
  _queue: unknown[];
  _result: unknown[];
}

await describeWithService('redis', 'Redis test service', () => {
  releaseFinishedIoredisPipelines();
  const client = new Redis(redisUrl(), { enableAutoPipelining: true });
  const key = uniqueName('pipeline-release');

  afterAll(async () => {
    await client.del(key, `${key}:a`);
    client.disconnect();
  });

  it('answers an explicit pipeline and empties it once settled', async () => {
    const pipeline = client.pipeline().set(key, 'one').get(key);
    expect(await pipeline.exec()).toEqual([
      [null, 'OK'],
      [null, 'one'],
    ]);
    const internals = pipeline as unknown as PipelineInternals;
    expect(internals._queue).toHaveLength(0);
    expect(internals._result).toHaveLength(0);
  });

  it('answers a transaction with its unwrapped results, and its errors as ioredis does', async () => {
    expect(await client.multi().set(key, 'two').get(key).exec()).toEqual([
      [null, 'OK'],
      [null, 'two'],
    ]);
    const failed = await client.multi().set(`${key}:a`, 'x').incr(`${key}:a`).exec();
    expect(failed?.[0]).toEqual([null, 'OK']);
    expect(failed?.[1]?.[0]).toBeInstanceOf(Error);
  });

  it('answers auto-pipelined commands each with its own reply', async () => {
    await client.set(key, 'three');
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? client.get(key) : client.exists(key))),
    );
    expect(replies).toEqual(Array.from({ length: 50 }, (_, i) => (i % 2 ? 'three' : 1)));
  });
});
