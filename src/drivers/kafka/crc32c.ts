/**
 * CRC-32C (Castagnoli), the checksum of every Kafka record batch, eight bytes a step, in place of
 * kafkajs 2.2.4's byte-at-a-time `recordBatch/crc32C` module.
 *
 * kafkajs checksums each produced batch one byte per table lookup; with records encoded into one
 * buffer each (record-encoder.ts) that checksum became the largest part left of encoding a produce
 * request: about 4.7 % of the proxy's CPU on a Kafka stream (bench/RESULTS.md, session 17). This is
 * the same CRC computed by "slicing by 8" (eight tables, one lookup per byte but eight bytes per
 * dependent step). Node has CRC-32 in zlib but not CRC-32C, and the npm packages with it are
 * either byte-at-a-time too (@aws-crypto/crc32c) or native addons.
 *
 * It takes the place of kafkajs's module before kafkajs first loads it, at the first produce
 * (kafkajs-module.ts).
 */
import { replaceKafkajsModule } from './kafkajs-module.js';

/** The reflected Castagnoli polynomial. */
const POLYNOMIAL = 0x82f63b78;

/** TABLES[k * 256 + b]: the CRC of byte b followed by k zero bytes. */
const TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let crc = b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    t[b] = crc;
  }
  for (let b = 0; b < 256; b++) {
    for (let k = 1; k < 8; k++) {
      const previous = t[(k - 1) * 256 + b]!;
      t[k * 256 + b] = (previous >>> 8) ^ t[previous & 0xff]!;
    }
  }
  return t;
})();

/** The CRC-32C of `bytes`, unsigned. */
export function crc32c(bytes: Uint8Array): number {
  const t = TABLES;
  let crc = ~0;
  let i = 0;
  const end8 = bytes.length - (bytes.length % 8);
  for (; i < end8; i += 8) {
    const low = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    crc =
      t[7 * 256 + (low & 0xff)]! ^
      t[6 * 256 + ((low >>> 8) & 0xff)]! ^
      t[5 * 256 + ((low >>> 16) & 0xff)]! ^
      t[4 * 256 + (low >>> 24)]! ^
      t[3 * 256 + bytes[i + 4]!]! ^
      t[2 * 256 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
  }
  for (; i < bytes.length; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** Puts `crc32c` in place of kafkajs's checksum module, once per process; true when it took. */
export const useSlicedKafkaCrc32c = (): boolean =>
  replaceKafkajsModule('src/protocol/recordBatch/crc32C/index.js', crc32c);
