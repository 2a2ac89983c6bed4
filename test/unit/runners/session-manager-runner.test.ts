import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { AnyDriver } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import type { SessionManagerRunner } from '../../../src/runners/session-manager/runner.js';
import type { DriverFactory } from '../../../src/runners/slots.js';
import { buildRunner, eventually, uniqueNamespace } from './helpers.js';

const dataDir = mkdtempSync(join(tmpdir(), 'prism-session-runner-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(['memstore', 'sqlite'])('session-manager runner on %s', (backend) => {
  /** The runner and its store driver, to read the TTL the runner set. */
  async function sessions(
    settings: Record<string, string>,
  ): Promise<{ runner: SessionManagerRunner; store: AnyDriver }> {
    let store: AnyDriver | undefined;
    const keep: DriverFactory = async (name, options) => (store = await createDriver(name, options));
    const runner = buildRunner<SessionManagerRunner>(
      {
        type: 'session-manager',
        name: 'sessions',
        namespace: uniqueNamespace(),
        slots: { store: backend },
        settings,
      },
      { dataDir, driverFactory: keep },
    );
    await runner.start();
    cleanup.push(() => runner.stop());
    return { runner, store: store! };
  }

  it('creates a session that get and touch return until closed', async () => {
    const { runner } = await sessions({});
    const created = await runner.create('user:alice', { device: 'laptop' });
    expect(created.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.subject).toBe('user:alice');
    expect(created.expiresAtMs - created.createdAtMs).toBe(3_600_000); // default session_ttl 1h
    expect(await runner.get(created.id)).toEqual(created);
    expect(await runner.touch(created.id)).toEqual(created);
    expect(await runner.close(created.id)).toBe(true);
    expect(await runner.get(created.id)).toBeUndefined();
    expect(await runner.close(created.id)).toBe(false);
  });

  it('stores a session with TTL = idle_timeout while its remaining life is longer', async () => {
    const { runner, store } = await sessions({ sessionTtl: '1h', idleTimeout: '15m' });
    const created = await runner.create('user:alice');
    const ttl = await store.ttl!(`session/sessions/${created.id}`);
    expect(ttl).toBeGreaterThan(14 * 60_000);
    expect(ttl).toBeLessThanOrEqual(15 * 60_000);
  });

  it('ends a session not touched for idle_timeout', async () => {
    const { runner } = await sessions({ sessionTtl: '10s', idleTimeout: '300ms' });
    const created = await runner.create('user:alice');
    await sleep(50);
    expect(await runner.get(created.id)).toBeDefined();
    await eventually(
      async () => (await runner.get(created.id)) === undefined,
      2000,
      'the idle session to end',
    );
    expect(await runner.touch(created.id)).toBeUndefined();
  });

  it('keeps a touched session alive past idle_timeout, but never past session_ttl', async () => {
    const { runner, store } = await sessions({ sessionTtl: '900ms', idleTimeout: '300ms' });
    const created = await runner.create('user:alice');
    const started = Date.now();
    // Touch well within the idle timeout: the session outlives idle_timeout several times over.
    while (Date.now() - started < 700) {
      expect(await runner.touch(created.id)).toBeDefined();
      await sleep(50);
    }
    // Near the end of life the store TTL is the remaining life, shorter than idle_timeout.
    const remaining = created.expiresAtMs - Date.now();
    const ttl = await store.ttl!(`session/sessions/${created.id}`);
    expect(ttl).toBeLessThanOrEqual(remaining + 60);
    expect(ttl).toBeLessThan(300);
    await eventually(async () => (await runner.touch(created.id)) === undefined, 2000, 'the session to end');
    expect(Date.now()).toBeGreaterThanOrEqual(created.expiresAtMs);
  });

  it('treats an unknown or malformed id as no session', async () => {
    const { runner } = await sessions({});
    expect(await runner.get('x'.repeat(43))).toBeUndefined();
    expect(await runner.touch('../../etc')).toBeUndefined();
    expect(await runner.close('')).toBe(false);
    await expect(runner.create('')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
  });
});
