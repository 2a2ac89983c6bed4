/**
 * One mailbox suite for every driver that declares the `mailbox` capability (sqlite, postgres):
 * idempotent inserts, untouched payloads, every filter combination against a reference computed
 * here, keyset pages, deletes, retention pruning, isolation and reopening the store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  AnyDriver,
  MailboxCapability,
  MailboxFilter,
  MailboxOrder,
  MailboxRecord,
  MailboxStore,
  StoredMailboxRecord,
} from '../../src/drivers/interfaces.js';
import { createDriver } from '../../src/drivers/registry.js';
import { isPrismError } from '../../src/errors.js';
import { declaredCapabilities, DRIVERS, type DriverUnderTest } from './drivers.js';
import { describeWithService, uniqueName } from '../support/services.js';

type MailboxDriver = AnyDriver & MailboxCapability;

const INDEXED = ['order-id', 'region'];
const T0 = 1_700_000_000_000;

/** A record with every field set; groups of three share a published time (ties order by insert). */
function record(i: number, over: Partial<MailboxRecord> = {}): MailboxRecord {
  return {
    messageId: `m-${String(i).padStart(3, '0')}`,
    topic: i % 2 === 0 ? 'orders.events' : 'orders.audit',
    publishedAtMs: T0 + Math.floor(i / 3) * 1000,
    storedAtMs: T0 + 500_000 + i,
    correlationId: `c-${i % 4}`,
    subject: `user-${i % 3}`,
    tenant: i % 5 < 2 ? 'acme' : 'globex',
    headers: { 'order-id': `o-${i % 5}`, region: i % 7 < 3 ? 'eu' : 'us', note: `n-${i % 2}` },
    meta: new Uint8Array([i % 256, 1, 2]),
    payload: new Uint8Array([0, 255, i % 256, 10, 13, 0]),
    payloadSize: 6,
    payloadOmitted: false,
    ...over,
  };
}

const RECORDS = Array.from({ length: 60 }, (_, i) => record(i));

/** The reference: what a filter must return, computed from the records in memory. */
function reference(filter: MailboxFilter, order: MailboxOrder): string[] {
  const matched = RECORDS.map((r, i) => ({ r, i })).filter(({ r }) => {
    if (filter.sinceMs !== undefined && r.publishedAtMs < filter.sinceMs) return false;
    if (filter.untilMs !== undefined && r.publishedAtMs >= filter.untilMs) return false;
    if (filter.topic && r.topic !== filter.topic) return false;
    if (filter.messageIds?.length && !filter.messageIds.includes(r.messageId)) return false;
    if (filter.correlationId && r.correlationId !== filter.correlationId) return false;
    if (filter.subject && r.subject !== filter.subject) return false;
    if (filter.tenant && r.tenant !== filter.tenant) return false;
    for (const [name, value] of Object.entries(filter.headers ?? {})) {
      if (r.headers[name] !== value) return false;
    }
    return true;
  });
  matched.sort((a, b) => a.r.publishedAtMs - b.r.publishedAtMs || a.i - b.i);
  if (order === 'newest') matched.reverse();
  return matched.map(({ r }) => r.messageId);
}

/** Every condition, each with one value; the suite tries every subset of them. */
const CONDITIONS: Array<(f: MailboxFilter) => void> = [
  (f) => (f.sinceMs = T0 + 4_000),
  (f) => (f.untilMs = T0 + 16_000),
  (f) => (f.topic = 'orders.events'),
  (f) => (f.messageIds = RECORDS.filter((_, i) => i % 3 !== 1).map((r) => r.messageId)),
  (f) => (f.correlationId = 'c-2'),
  (f) => (f.subject = 'user-0'),
  (f) => (f.tenant = 'globex'),
  (f) => (f.headers = { ...f.headers, 'order-id': 'o-2' }),
  (f) => (f.headers = { ...f.headers, region: 'us' }),
];

function filterOf(mask: number): MailboxFilter {
  const filter: MailboxFilter = {};
  CONDITIONS.forEach((apply, bit) => {
    if (mask & (1 << bit)) apply(filter);
  });
  return filter;
}

/** Every page of a query, following cursors. */
async function allPages(
  box: MailboxStore,
  filter: MailboxFilter,
  order: MailboxOrder,
  limit: number,
): Promise<StoredMailboxRecord[][]> {
  const pages: StoredMailboxRecord[][] = [];
  let cursor: string | undefined;
  do {
    const page = await box.query(filter, { order, limit, ...(cursor ? { cursor } : {}) });
    pages.push(page.records);
    cursor = page.cursor;
    if (pages.length > 1000) throw new Error('query did not end after 1000 pages');
  } while (cursor !== undefined);
  return pages;
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (isPrismError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a rejection');
}

const MAILBOX_DRIVERS = DRIVERS.filter((entry) => declaredCapabilities(entry).includes('mailbox'));

async function describeDriver(entry: DriverUnderTest, fn: () => void): Promise<void> {
  const title = `mailbox conformance: ${entry.name}`;
  if (entry.service !== undefined) await describeWithService(entry.service, title, fn);
  else describe(title, fn);
}

it('runs against sqlite and postgres', () => {
  expect(MAILBOX_DRIVERS.map((d) => d.name)).toEqual(['sqlite', 'postgres']);
});

for (const entry of MAILBOX_DRIVERS) {
  const namespace = uniqueName('mb');
  const dir = entry.backend === 'sqlite' ? mkdtempSync(join(tmpdir(), 'prism-mailbox-conf-')) : undefined;
  const drivers: AnyDriver[] = [];

  /** A connected driver of the backend for `ns`; sqlite drivers share one directory, as after a restart. */
  async function open(ns = namespace): Promise<MailboxDriver> {
    const driver = await createDriver(entry.backend, {
      endpoint: entry.endpoint(),
      namespace: ns,
      ...(dir !== undefined ? { dataDir: dir } : {}),
    });
    drivers.push(driver);
    await driver.connect();
    return driver as MailboxDriver;
  }

  await describeDriver(entry, () => {
    let driver: MailboxDriver;
    let box: MailboxStore;

    beforeAll(async () => {
      driver = await open();
      box = await driver.openMailbox('inbox', { indexedHeaders: INDEXED });
      const seqs = await box.insert(RECORDS);
      expect(seqs.every((s) => typeof s === 'number')).toBe(true);
    });

    afterAll(async () => {
      for (const d of drivers.reverse()) await d.close();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    it('stores a record once: inserting its message id again changes nothing', async () => {
      const other = await driver.openMailbox('idempotent', { indexedHeaders: INDEXED });
      const [first] = await other.insert([record(1)]);
      const again = await other.insert([record(1, { payload: new Uint8Array([9]), topic: 'changed' })]);
      expect(typeof first).toBe('number');
      expect(again).toEqual([undefined]);
      const batch = await other.insert([record(2), record(2)]);
      expect(typeof batch[0]).toBe('number');
      expect(batch[1]).toBeUndefined();
      expect(await other.count()).toBe(2);
      const { records } = await other.query({ messageIds: ['m-001'] }, { order: 'newest', limit: 10 });
      expect(records.map((r) => [r.topic, [...r.payload]])).toEqual([
        ['orders.audit', [0, 255, 1, 10, 13, 0]],
      ]);
    });

    it('returns every field as inserted, payload bytes untouched', async () => {
      const { records } = await box.query({ messageIds: ['m-007'] }, { order: 'newest', limit: 10 });
      expect(records).toHaveLength(1);
      const { seq, ...stored } = records[0]!;
      expect(seq).toBeGreaterThan(0);
      expect({ ...stored, meta: [...stored.meta], payload: [...stored.payload] }).toEqual({
        ...RECORDS[7]!,
        meta: [...RECORDS[7]!.meta],
        payload: [...RECORDS[7]!.payload],
      });
    });

    it('keeps an empty payload, and an omitted payload with its size', async () => {
      const other = await driver.openMailbox('sizes', { indexedHeaders: [] });
      await other.insert([
        record(1, { payload: new Uint8Array(), payloadSize: 0 }),
        record(2, { payload: new Uint8Array(), payloadSize: 5_000_000, payloadOmitted: true }),
      ]);
      const { records } = await other.query({}, { order: 'oldest', limit: 10 });
      expect(records.map((r) => [r.messageId, r.payload.length, r.payloadSize, r.payloadOmitted])).toEqual([
        ['m-001', 0, 0, false],
        ['m-002', 0, 5_000_000, true],
      ]);
    });

    it('answers every combination of filters like the reference, in both orders and across pages', async () => {
      let nonEmpty = 0;
      for (let mask = 0; mask < 1 << CONDITIONS.length; mask++) {
        const filter = filterOf(mask);
        for (const order of ['newest', 'oldest'] as const) {
          const expected = reference(filter, order);
          const pages = await allPages(box, filter, order, 7);
          const ids = pages.flat().map((r) => r.messageId);
          expect(ids, `filter ${JSON.stringify(filter)} ${order}`).toEqual(expected);
          // Every page is full except the last; an exact multiple ends with an empty page.
          for (const page of pages.slice(0, -1)) expect(page).toHaveLength(7);
          if (expected.length > 0) nonEmpty++;
        }
      }
      // The conditions overlap enough that most combinations select something.
      expect(nonEmpty).toBeGreaterThan(300);
    });

    it('refuses a filter on a header that is not indexed, naming it', async () => {
      const err = await rejection(box.query({ headers: { note: 'n-1' } }, { order: 'newest', limit: 10 }));
      expect(err.code).toBe('E_INVALID_ARGUMENT');
      expect(err.message).toBe('header "note" is not indexed in this mailbox');
    });

    it('refuses an empty time range and a limit above 1000', async () => {
      expect(
        (await rejection(box.query({ sinceMs: T0 + 5, untilMs: T0 + 5 }, { order: 'newest', limit: 10 })))
          .message,
      ).toBe(`until (${T0 + 5}) must be after since (${T0 + 5})`);
      expect((await rejection(box.query({}, { order: 'newest', limit: 1001 }))).message).toBe(
        'limit must be 1 to 1000, got 1001',
      );
    });

    it('refuses a page token with another filter or order', async () => {
      const first = await box.query({ tenant: 'acme' }, { order: 'newest', limit: 3 });
      expect(first.cursor).toBeDefined();
      const wrongFilter = await rejection(
        box.query({ tenant: 'globex' }, { order: 'newest', limit: 3, cursor: first.cursor! }),
      );
      const wrongOrder = await rejection(
        box.query({ tenant: 'acme' }, { order: 'oldest', limit: 3, cursor: first.cursor! }),
      );
      expect([wrongFilter.code, wrongOrder.code]).toEqual(['E_INVALID_ARGUMENT', 'E_INVALID_ARGUMENT']);
      expect(wrongFilter.message).toBe('the page token belongs to another filter or order');
    });

    it('keeps mailboxes apart: by name within a namespace, and across namespaces', async () => {
      const sibling = await driver.openMailbox('sibling', { indexedHeaders: INDEXED });
      const foreign = await (
        await open(uniqueName('mb-other'))
      ).openMailbox('inbox', { indexedHeaders: INDEXED });
      await foreign.insert([record(1, { messageId: 'foreign-1' })]);
      expect(await sibling.count()).toBe(0);
      expect((await sibling.query({}, { order: 'newest', limit: 10 })).records).toEqual([]);
      expect(
        (await box.query({ messageIds: ['foreign-1'] }, { order: 'newest', limit: 10 })).records,
      ).toEqual([]);
      expect(await foreign.count()).toBe(1);
      // The same message id may live in two mailboxes.
      expect(await sibling.insert([record(7)])).toHaveLength(1);
      expect(await sibling.count()).toBe(1);
    });

    it('deletes by ids and by filter, including the header index entries', async () => {
      const other = await driver.openMailbox('deletes', { indexedHeaders: INDEXED });
      await other.insert(RECORDS);
      expect(await other.delete({ messageIds: ['m-000', 'm-001', 'missing'] })).toBe(2);
      expect(await other.delete({ headers: { 'order-id': 'o-2' } })).toBe(12);
      expect(
        (await other.query({ headers: { 'order-id': 'o-2' } }, { order: 'newest', limit: 100 })).records,
      ).toEqual([]);
      expect(await other.count()).toBe(46);
      const remaining = (await allPages(other, {}, 'oldest', 100)).flat().map((r) => r.messageId);
      expect(remaining).toEqual(
        RECORDS.filter((r, i) => i > 1 && r.headers['order-id'] !== 'o-2').map((r) => r.messageId),
      );
    });

    it('refuses a delete without ids or conditions', async () => {
      const err = await rejection(box.delete({}));
      expect(err).toEqual({
        code: 'E_INVALID_ARGUMENT',
        message: 'a delete needs message ids or a filter with at least one condition',
      });
      expect(await box.count()).toBe(RECORDS.length);
    });

    it('prunes only what is older than the cutoff, then only beyond the newest N', async () => {
      const other = await driver.openMailbox('prune', { indexedHeaders: INDEXED });
      await other.insert(RECORDS);
      // Records 0..8 are published before T0 + 3000; 9..11 exactly at it, and stay.
      expect(await other.prune({ beforeMs: T0 + 3_000 })).toBe(9);
      expect((await allPages(other, {}, 'oldest', 100)).flat()[0]!.messageId).toBe('m-009');
      expect(await other.prune({ keepNewest: 10 })).toBe(41);
      const kept = (await allPages(other, {}, 'newest', 100)).flat().map((r) => r.messageId);
      expect(kept).toEqual(reference({}, 'newest').slice(0, 10));
      expect(await other.prune({ keepNewest: 10, beforeMs: T0 })).toBe(0);
      // Header rows went with their messages.
      expect(
        (await allPages(other, { headers: { region: 'eu' } }, 'newest', 100)).flat().map((r) => r.messageId),
      ).toEqual(reference({ headers: { region: 'eu' } }, 'newest').filter((id) => kept.includes(id)));
    });

    it('still holds every record after the store is closed and opened again', async () => {
      await driver.close();
      drivers.splice(drivers.indexOf(driver), 1);
      const reopened = await open();
      const again = await reopened.openMailbox('inbox', { indexedHeaders: INDEXED });
      expect(await again.count()).toBe(RECORDS.length);
      expect(await again.insert([record(3)])).toEqual([undefined]);
      const ids = (await allPages(again, { headers: { region: 'us' } }, 'newest', 50))
        .flat()
        .map((r) => r.messageId);
      expect(ids).toEqual(reference({ headers: { region: 'us' } }, 'newest'));
    });
  });
}
