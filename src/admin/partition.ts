import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const PARTITION_COUNT = 256;

/** CRC-32/IEEE of the namespace name, mod 256. */
export function partitionOf(namespace: string): number {
  return crc32(namespace) % PARTITION_COUNT;
}

/**
 * Rendezvous (highest random weight) hashing: each partition goes to the proxy with the highest
 * hash of (proxy, partition). Adding a proxy moves only the partitions it now wins, about 1/N.
 */
export function ownerOf(partition: number, proxyIds: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1n;
  for (const id of proxyIds) {
    const weight = createHash('sha256').update(`${id}\u0000${partition}`).digest().readBigUInt64BE(0);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = weight;
    }
  }
  return best;
}
