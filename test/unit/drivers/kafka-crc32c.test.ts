/**
 * The sliced CRC-32C (src/drivers/kafka/crc32c.ts) gives the checksum of the standard check value
 * and the same checksums as kafkajs 2.2.4's own byte-at-a-time module for buffers of every length
 * around its 8-byte steps, at unaligned offsets, and for a record batch's size. This process never
 * installs it, so `require` gives kafkajs's module.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../../src/drivers/kafka/crc32c.js';

const kafkajsCrc32c = createRequire(import.meta.url)('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (
  bytes: Buffer,
) => number;

describe('crc32c', () => {
  it('gives the CRC-32C check value and that of an empty input', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
  });

  it("agrees with kafkajs's checksum for every length to 100, unaligned views and large batches", () => {
    const pool = randomBytes(70_000);
    const views: Buffer[] = [];
    for (let n = 0; n <= 100; n++) views.push(pool.subarray(0, n), pool.subarray(3, 3 + n));
    views.push(pool.subarray(1, 15_001), pool.subarray(0, 65_537), pool);
    for (const view of views) expect(crc32c(view)).toBe(kafkajsCrc32c(view));
  });
});
