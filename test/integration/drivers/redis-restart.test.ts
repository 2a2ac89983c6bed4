/**
 * The redis keyvalue driver across a Redis restart, against a private redis-server this test starts
 * on a free port (append-only file, fsync on every write; the shared test Redis is not touched):
 * while Redis is down every call fails fast with BackendDownError, and once it is back the driver
 * reconnects by itself and finds every acknowledged write.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  BackendDownError,
  type AnyDriver,
  type KeyValueStore,
  type ScanStore,
  type TtlStore,
} from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import { describeWithRedisServer, freePort, startRedis, stopRedis } from '../../support/private-redis.js';
import { uniqueName } from '../../support/services.js';

type KvDriver = AnyDriver & KeyValueStore & TtlStore & ScanStore;

const FAIL_FAST_MS = 2_000;
const RECONNECT_WAIT_MS = 15_000;

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Asserts that `call` rejects with BackendDownError within FAIL_FAST_MS. */
async function expectFastBackendDown(what: string, call: () => Promise<unknown>): Promise<void> {
  const started = Date.now();
  const error = await call().then(
    () => new Error(`${what} succeeded while Redis was down`),
    (err: unknown) => err,
  );
  const elapsed = Date.now() - started;
  expect(error, what).toBeInstanceOf(BackendDownError);
  expect((error as BackendDownError).code).toBe('E_BACKEND_DOWN');
  expect((error as Error).message).toMatch(/^redis is unavailable: /);
  expect(elapsed, `${what} took ${elapsed} ms`).toBeLessThan(FAIL_FAST_MS);
}

describeWithRedisServer('redis keyvalue driver across a Redis restart', () => {
  let dir: string;
  let port: number;
  let redis: ChildProcess | undefined;
  const drivers: AnyDriver[] = [];

  async function newDriver(): Promise<KvDriver> {
    const driver = await createDriver('redis', {
      endpoint: `redis://127.0.0.1:${port}`,
      namespace: uniqueName('restart'),
    });
    drivers.push(driver);
    return driver as KvDriver;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'prism-redis-restart-'));
    port = await freePort();
  });

  afterAll(async () => {
    for (const driver of drivers) await driver.close();
    if (redis) await stopRedis(redis, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails connect() fast while Redis is not there, and connects once it is', async () => {
    const driver = await newDriver();
    await expectFastBackendDown('connect', () => driver.connect());

    redis = await startRedis(port, dir);
    await driver.connect();
    await driver.set('first', text('after a failed connect'));
    expect(str(await driver.get('first'))).toBe('after a failed connect');
  });

  it('fails fast while Redis is down, reconnects by itself, and keeps acknowledged writes', async () => {
    const driver = await newDriver();
    await driver.connect();
    const keys = Array.from({ length: 50 }, (_, i) => `acked/${i}`);
    for (const key of keys) await driver.set(key, text(`value of ${key}`));
    await driver.set('with-ttl', text('x'), 600_000);

    await stopRedis(redis as ChildProcess, 'SIGTERM');

    await expectFastBackendDown('get', () => driver.get('acked/0'));
    await expectFastBackendDown('set', () => driver.set('while-down', text('x')));
    await expectFastBackendDown('scan', () => driver.scan('acked/', { limit: 10 }));
    await expectFastBackendDown('health', () => driver.health());

    redis = await startRedis(port, dir);

    // No connect() call: the driver must find its way back on its own.
    const started = Date.now();
    for (;;) {
      try {
        await driver.health();
        break;
      } catch (err) {
        expect(err).toBeInstanceOf(BackendDownError);
        if (Date.now() - started > RECONNECT_WAIT_MS) throw err;
        await sleep(50);
      }
    }
    const values = await Promise.all(keys.map((key) => driver.get(key)));
    expect(values.map(str)).toEqual(keys.map((key) => `value of ${key}`));
    expect(await driver.ttl('with-ttl')).toBeGreaterThan(0);
    expect(await driver.exists('while-down')).toBe(false);
    await driver.set('after-restart', text('y'));
    expect(str(await driver.get('after-restart'))).toBe('y');
  });
});
