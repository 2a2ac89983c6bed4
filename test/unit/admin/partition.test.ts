import { describe, expect, it } from 'vitest';
import { ownerOf, PARTITION_COUNT, partitionOf } from '../../../src/admin/partition.js';

describe('partitionOf', () => {
  it('is CRC-32/IEEE of the name mod 256', () => {
    // CRC-32/IEEE("123456789") = 0xCBF43926, the standard check value.
    expect(partitionOf('123456789')).toBe(0xcbf43926 % 256);
    expect(partitionOf('orders')).toBe(3845127662 % 256);
  });

  it('always lands in 0..255', () => {
    for (let i = 0; i < 1000; i++) {
      const p = partitionOf(`ns-${i}`);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(PARTITION_COUNT);
    }
  });
});

describe('ownerOf (rendezvous hashing)', () => {
  const owners = (proxies: string[]) =>
    Array.from({ length: PARTITION_COUNT }, (_, p) => ownerOf(p, proxies));

  it('has no owner without live proxies', () => {
    expect(ownerOf(7, [])).toBeUndefined();
  });

  it('gives every partition to one of the proxies, roughly evenly', () => {
    const counts = new Map<string, number>();
    for (const owner of owners(['a', 'b', 'c', 'd'])) counts.set(owner!, (counts.get(owner!) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(['a', 'b', 'c', 'd']);
    for (const count of counts.values()) expect(count).toBeGreaterThan(PARTITION_COUNT / 4 / 2);
  });

  it('does not depend on the order proxies are listed in', () => {
    expect(owners(['a', 'b', 'c'])).toEqual(owners(['c', 'a', 'b']));
  });

  it('moves only the partitions the new proxy wins when a proxy is added (about 1/N)', () => {
    const before = owners(['a', 'b', 'c', 'd']);
    const after = owners(['a', 'b', 'c', 'd', 'e']);
    const moved = before.filter((owner, p) => owner !== after[p]);
    expect(moved.length).toBeGreaterThan(0);
    expect(moved.length).toBeLessThan(PARTITION_COUNT / 5 + 25);
    after.forEach((owner, p) => {
      if (owner !== before[p]) expect(owner).toBe('e');
    });
  });

  it('hands a removed proxy’s partitions to the others and leaves the rest in place', () => {
    const before = owners(['a', 'b', 'c']);
    const after = owners(['a', 'c']);
    before.forEach((owner, p) => {
      if (owner !== 'b') expect(after[p]).toBe(owner);
      else expect(['a', 'c']).toContain(after[p]);
    });
  });
});
