/**
 * The redis keyvalue driver across a Redis restart, against a private redis-server this test starts
 * on a free port (append-only file, fsync on every write; the shared test Redis is not touched):
 * while Redis is down every call fails fast with BackendDownError, and once it is back the driver
 * reconnects by itself and finds every acknowledged write.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BackendDownError,
  type AnyDriver,
  type KeyValueStore,
  type ScanStore,
  type TtlStore,
} from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import { servicesRequired, uniqueName } from '../../support/services.js';

type KvDriver = AnyDriver & KeyValueStore & TtlStore & ScanStore;

const FAIL_FAST_MS = 2_000;
const RECONNECT_WAIT_MS = 15_000;

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function redisServerVersion(): string | undefined {
  const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** True when a Redis server answers PING on the port (a bare TCP connect can even reach itself). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(1_000, () => socket.destroy());
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) socket.destroy();
    });
    socket.once('error', () => {});
    socket.once('close', () => resolve(reply.startsWith('+PONG')));
  });
}

/** A private redis-server; resolves once it accepts connections. */
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--dir',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const started = Date.now();
  while (!(await answersPing(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}):\n${output}`);
    if (Date.now() - started > 10_000)
      throw new Error(`redis-server did not listen on ${port} in 10 s:\n${output}`);
    await sleep(25);
  }
  return child;
}

async function stopRedis(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

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

function describeWithRedisServer(title: string, fn: () => void): void {
  const version = redisServerVersion();
  if (version !== undefined) {
    describe(title, fn);
    return;
  }
  const message = `redis-server is not installed (needed to start a private Redis); install the redis-server package`;
  if (servicesRequired()) {
    describe(title, () => {
      it('needs redis-server', () => {
        throw new Error(`${message} [PRISM_REQUIRE_SERVICES=1: a missing service is a failure]`);
      });
    });
    return;
  }
  console.warn(`[skip] ${title}: ${message}`);
  describe.skipIf(true)(`${title} (skipped: redis-server not installed)`, fn);
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
