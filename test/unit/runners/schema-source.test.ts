/** The proxy's schema cache (docs/schemas.md, Enforcement): TTL, the last good version, and refusals. */
import { describe, expect, it } from 'vitest';
import { PrismError } from '../../../src/errors.js';
import { SchemaCache, type RegisteredSchema } from '../../../src/runners/payload/schema-source.js';

const version = (n: number): RegisteredSchema => ({
  subject: 'orders.events-value',
  id: 100 + n,
  version: n,
  schemaType: 'JSON',
  schema: '{}',
});

/** A registry stand-in whose answers the test sets, counting calls. */
function registry() {
  const state = { answer: version(1) as RegisteredSchema | PrismError, calls: 0, now: 0 };
  const cache = new SchemaCache({
    ttlMs: 1000,
    now: () => state.now,
    fetch: async () => {
      state.calls++;
      if (state.answer instanceof PrismError) throw state.answer;
      return state.answer;
    },
  });
  return { state, cache };
}

describe('SchemaCache', () => {
  it('fetches a subject once per TTL and picks up a new version after it', async () => {
    const { state, cache } = registry();
    expect((await cache.latest('orders.events-value')).version).toBe(1);
    state.answer = version(2);
    state.now = 999;
    expect((await cache.latest('orders.events-value')).version).toBe(1);
    state.now = 1000;
    expect((await cache.latest('orders.events-value')).version).toBe(2);
    expect(state.calls).toBe(2);
  });

  it('asks once for concurrent callers', async () => {
    const { state, cache } = registry();
    const all = await Promise.all([1, 2, 3].map(() => cache.latest('orders.events-value')));
    expect(all.map((s) => s.version)).toEqual([1, 1, 1]);
    expect(state.calls).toBe(1);
  });

  it('keeps the last version when the registry is unreachable, and asks again a TTL later', async () => {
    const { state, cache } = registry();
    await cache.latest('orders.events-value');
    state.answer = new PrismError('E_UNREACHABLE', 'connect ECONNREFUSED');
    state.now = 1500;
    expect((await cache.latest('orders.events-value')).version).toBe(1);
    state.now = 2000;
    expect((await cache.latest('orders.events-value')).version).toBe(1);
    expect(state.calls).toBe(2);
    state.answer = version(3);
    state.now = 2500;
    expect((await cache.latest('orders.events-value')).version).toBe(3);
  });

  it('refuses with E_UNAVAILABLE a subject it never fetched while the registry is unreachable', async () => {
    const { state, cache } = registry();
    state.answer = new PrismError('E_UNREACHABLE', 'connect ECONNREFUSED');
    await expect(cache.latest('orders.events-value')).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message:
        "the schema of subject 'orders.events-value' cannot be fetched, so the payload cannot be checked: connect ECONNREFUSED",
    });
  });

  it('refuses with E_NOT_FOUND a subject whose versions were deleted, even after a good fetch', async () => {
    const { state, cache } = registry();
    await cache.latest('orders.events-value');
    state.answer = new PrismError('E_NOT_FOUND', "Subject 'orders.events-value' not found.");
    state.now = 1000;
    await expect(cache.latest('orders.events-value')).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
      message: "schema subject 'orders.events-value' has no live version in the registry",
    });
  });
});
