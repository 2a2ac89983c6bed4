/**
 * PublishUpload into a producer without a claim check (src/runners/producer/runner.ts
 * publishUpload): the upload becomes one message, so it must fit the proxy's --max-message-size;
 * a larger one is refused with both numbers before a byte is read, and nothing is published.
 */
import { afterEach, expect, it } from 'vitest';
import { isPrismError } from '../../../src/errors.js';
import type { ProducerRunner } from '../../../src/runners/producer/runner.js';
import { ALICE, buildRunner, uniqueNamespace } from './helpers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function producer(): Promise<ProducerRunner> {
  const runner = buildRunner<ProducerRunner>({
    type: 'producer',
    namespace: uniqueNamespace('upload'),
    slots: { sink: 'memstore' },
    settings: { topic: 'files' },
  });
  await runner.start();
  cleanup.push(() => runner.stop());
  return runner;
}

function frames(sizes: number[], read: { bytes: number }): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (const size of sizes) {
      read.bytes += size;
      yield new Uint8Array(size).fill(7);
    }
  })();
}

it('refuses an upload over the message limit that no claim check stores, naming both numbers, before reading it', async () => {
  const runner = await producer();
  const read = { bytes: 0 };
  const refused = await runner
    .publishUpload({ size: 2048, chunks: frames([1024, 1024], read), maxInlineBytes: 1024 }, ALICE)
    .catch((e: unknown) => e);
  expect(isPrismError(refused) && refused.code).toBe('E_PAYLOAD_TOO_LARGE');
  expect((refused as Error).message).toBe(
    "payload is 2048 bytes and no claim check stores it; the proxy's message limit is 1024 bytes (--max-message-size)",
  );
  expect(read.bytes).toBe(0);
});

it('gathers an upload within the message limit into one message', async () => {
  const runner = await producer();
  const read = { bytes: 0 };
  const result = await runner.publishUpload(
    { size: 1024, chunks: frames([512, 512], read), maxInlineBytes: 1024 },
    ALICE,
  );
  expect(result.duplicate).toBe(false);
  expect(read.bytes).toBe(1024);
});
