import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SessionCache, sessionKey } from '../../../src/auth/session-cache.js';

/** A session that records whether it was closed. */
class FakeSession {
  closed = false;
  constructor(readonly name: string) {}
  async close(): Promise<void> {
    this.closed = true;
  }
}

function cacheAt(options: { ttlMs?: number; idleMs?: number; maxSessions?: number } = {}) {
  const clock = { now: 1_000_000 };
  const cache = new SessionCache<FakeSession>({
    ttlMs: options.ttlMs ?? 60_000,
    idleMs: options.idleMs ?? 10_000,
    maxSessions: options.maxSessions ?? 10,
    sweepMs: 60_000,
    now: () => clock.now,
  });
  const opened: FakeSession[] = [];
  const get = (token: string, expiresAtMs?: number) =>
    cache.get('scope', token, expiresAtMs, async () => {
      const session = new FakeSession(token);
      opened.push(session);
      return session;
    });
  return { cache, clock, opened, get };
}

describe('SessionCache', () => {
  it('opens a session on a token’s first call and reuses it for the next calls', async () => {
    const { get, opened, cache } = cacheAt();
    const first = await get('token-a');
    expect(await get('token-a')).toBe(first);
    expect(opened).toHaveLength(1);
    await cache.close();
  });

  it('shares one opening between concurrent first calls of the same token', async () => {
    const { get, opened, cache } = cacheAt();
    const [a, b] = await Promise.all([get('token-a'), get('token-a')]);
    expect(a).toBe(b);
    expect(opened).toHaveLength(1);
    await cache.close();
  });

  it('keys sessions by a SHA-256 of scope and token, never the token itself', async () => {
    const { get, cache } = cacheAt();
    await get('eyJ.secret-token.sig');
    const expected = createHash('sha256')
      .update('scope')
      .update('\0')
      .update('eyJ.secret-token.sig')
      .digest('base64url');
    expect(cache.keys()).toEqual([expected]);
    expect(sessionKey('scope', 'eyJ.secret-token.sig')).toBe(expected);
    expect(cache.keys().join()).not.toContain('secret-token');
    await cache.close();
  });

  it('closes a session when its TTL passes, even while it is in use', async () => {
    const { get, clock, opened, cache } = cacheAt({ ttlMs: 30_000, idleMs: 20_000 });
    await get('token-a');
    for (let i = 0; i < 3; i++) {
      clock.now += 10_000;
      await get('token-a');
    }
    await cache.settled();
    expect(opened).toHaveLength(2);
    expect(opened[0]!.closed).toBe(true);
    expect(opened[1]!.closed).toBe(false);
    await cache.close();
  });

  it('never keeps a session beyond its token’s expiry', async () => {
    const { get, clock, opened, cache } = cacheAt({ ttlMs: 60_000 });
    await get('token-a', clock.now + 5_000);
    clock.now += 5_000;
    cache.sweep();
    await cache.settled();
    expect(opened[0]!.closed).toBe(true);
    expect(cache.size).toBe(0);
    await cache.close();
  });

  it('closes a session that sat idle for the idle timeout', async () => {
    const { get, clock, opened, cache } = cacheAt({ idleMs: 10_000 });
    await get('token-a');
    clock.now += 9_999;
    cache.sweep();
    expect(opened[0]!.closed).toBe(false);
    clock.now += 1;
    cache.sweep();
    await cache.settled();
    expect(opened[0]!.closed).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('closes idle sessions on its own, without further calls', async () => {
    const cache = new SessionCache<FakeSession>({ ttlMs: 60_000, idleMs: 40, maxSessions: 10, sweepMs: 10 });
    const session = await cache.get('scope', 'token-a', undefined, async () => new FakeSession('a'));
    await new Promise((r) => setTimeout(r, 150));
    await cache.settled();
    expect(session.closed).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('closes the least recently used session when one more would pass the limit', async () => {
    const { get, clock, opened, cache } = cacheAt({ maxSessions: 2 });
    await get('token-a');
    clock.now += 1;
    await get('token-b');
    clock.now += 1;
    await get('token-a');
    await get('token-c');
    await cache.settled();
    expect(opened.map((s) => [s.name, s.closed])).toEqual([
      ['token-a', false],
      ['token-b', true],
      ['token-c', false],
    ]);
    expect(cache.size).toBe(2);
    await cache.close();
  });

  it('does not keep a session whose opening failed, so the next call tries again', async () => {
    const { cache } = cacheAt();
    await expect(
      cache.get('scope', 'token-a', undefined, async () => {
        throw new Error('vault is down');
      }),
    ).rejects.toThrow('vault is down');
    expect(cache.size).toBe(0);
    const session = await cache.get('scope', 'token-a', undefined, async () => new FakeSession('a'));
    expect(session.closed).toBe(false);
    await cache.close();
  });

  it('closes every session when it closes, and opens no more', async () => {
    const { get, opened, cache } = cacheAt();
    await get('token-a');
    await get('token-b');
    await cache.close();
    expect(opened.every((s) => s.closed)).toBe(true);
    await expect(get('token-c')).rejects.toThrow(/closed/);
  });
});
