/**
 * A proxy told to stop (SIGTERM) while streams are open: a PublishStream stops taking messages,
 * acknowledges those it had received (after their batch was sent), then ends with UNAVAILABLE;
 * a Consume stream ends cleanly; the proxy exits 0.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { PrismError } from '../../src/errors.js';
import { ensureBuilt } from '../support/cli.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';
import { consumeReader, sleep, streamNamespaceYaml, waitFor } from './support-streams.js';

describe('PublishStream and Consume while the proxy drains', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prism-stream-drain-'));
  const namespace = uniqueName('drain');
  let proxy: RunningServer;
  let client: DataClient;

  beforeAll(async () => {
    await ensureBuilt();
    mkdirSync(join(dir, 'ns'));
    // A long batch_interval keeps published messages waiting in the producer when the drain starts.
    writeFileSync(
      join(dir, 'ns', 'drain.yaml'),
      streamNamespaceYaml(namespace, 'memstore', { batch_size: 1000, batch_interval: '700ms' }),
    );
    proxy = await startProxy({ namespaces: join(dir, 'ns') });
    client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, { namespace, timeoutMs: 10_000 });
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await proxy?.stop('SIGKILL');
  });

  it('acknowledges what a PublishStream had received, then ends it with UNAVAILABLE, and ends Consume with OK', async () => {
    const consumer = client.consume({ group: 'drain' });
    const reader = consumeReader(consumer);
    let consumeEnded = false;
    consumer.on('end', () => (consumeEnded = true));
    const writer = client.publishStream();
    await writer.ready();
    const acks = Array.from({ length: 5 }, (_, i) => writer.publish({ payload: Buffer.from(`d${i}`) }));
    await sleep(200); // received by the proxy, waiting for their batch
    const stopped = proxy.stop('SIGTERM');

    const results = await Promise.allSettled(acks);
    expect(results.map((r) => r.status)).toEqual(Array(5).fill('fulfilled'));
    const ended = await writer.end().then(
      () => undefined,
      (err: PrismError) => err,
    );
    expect(ended?.code).toBe('E_UNAVAILABLE');
    expect(ended?.message).toContain('draining');
    expect(await stopped).toBe(0);
    await waitFor('the Consume stream to end', () => consumeEnded || reader.failure !== undefined, 5_000);
    expect(reader.failure).toBeUndefined();
  }, 30_000);
});
