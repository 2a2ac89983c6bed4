/**
 * The filesystem `objects` driver's own housekeeping (the shared contract is
 * test/conformance/objects.test.ts): removing objects removes the directories their keys left empty.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { createFilesystemObjects } from '../../../src/drivers/objects/filesystem.js';

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

async function store(now: () => number = Date.now) {
  const root = mkdtempSync(join(tmpdir(), 'prism-fs-objects-'));
  roots.push(root);
  const objects = createFilesystemObjects({ endpoint: `file:${root}`, namespace: 'files', now });
  await objects.connect();
  return { objects, data: join(root, 'files', 'data'), meta: join(root, 'files', 'meta') };
}

const body = new TextEncoder().encode('payload');

it('removes the directories a deleted key leaves empty, and keeps those still holding objects', async () => {
  const { objects, data, meta } = await store();
  await objects.putObject('claims/abc/m1', body);
  await objects.putObject('claims/abc/m1.groups/billing', new Uint8Array(0));
  await objects.putObject('claims/abc/m2', body);

  await objects.deleteObject('claims/abc/m1.groups/billing');
  await objects.deleteObject('claims/abc/m1');
  expect(readdirSync(join(data, 'claims', 'abc'))).toEqual(['m2']);
  expect(readdirSync(join(meta, 'claims', 'abc'))).toEqual(['m2.json']);

  await objects.deleteObject('claims/abc/m2');
  expect(readdirSync(data)).toEqual([]);
  expect(readdirSync(meta)).toEqual([]);
  // The roots stay, and the same prefix takes objects again.
  await objects.putObject('claims/abc/m3', body);
  expect(await objects.getObject('claims/abc/m3')).toEqual(body);
});

it('removes the directories of objects a sweep deleted', async () => {
  let now = 1_000_000;
  const { objects, data, meta } = await store(() => now);
  await objects.putObject('claims/abc/m1', body, { ttlMs: 1000 });
  await objects.putObject('claims/abc/m1.groups/billing', new Uint8Array(0), { ttlMs: 1000 });
  now += 1000;
  expect(await objects.sweepObjects('claims/')).toBe(2);
  expect(readdirSync(data)).toEqual([]);
  expect(readdirSync(meta)).toEqual([]);
});
