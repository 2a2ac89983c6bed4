import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { PrismError } from '../../src/errors.js';
import { servedNamespaces } from '../../src/localstack/up-readiness.js';
import { ensureBuilt } from '../support/cli.js';
import { describeWithRedisServer, freePort, startRedis, stopRedis } from '../support/private-redis.js';
import { startProxy, waitUntilServed, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

/** A proxy serving one keyvalue namespace on the private Redis at `port` (which may not be up). */
function startKeyValueProxy(dir: string, port: number, namespace: string): Promise<RunningServer> {
  writeFileSync(
    join(dir, 'backends.yaml'),
    `backends:\n  redis: [{ name: private, endpoint: "redis://127.0.0.1:${port}" }]\n`,
  );
  writeFileSync(
    join(dir, 'ns.yaml'),
    `namespace: ${namespace}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n`,
  );
  return startProxy({ namespaces: join(dir, 'ns.yaml'), backends: join(dir, 'backends.yaml') });
}

/**
 * A backend restarted under load, seen only through the proxy: calls fail with UNAVAILABLE while
 * Redis is down, succeed again after it is back, and every write the proxy acknowledged is there.
 */
describeWithRedisServer('a Redis restart under load, through the proxy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prism-restart-'));
  const namespace = uniqueName('restart');
  let port: number;
  let redis: ChildProcess | undefined;
  let proxy: RunningServer;
  let client: DataClient;

  beforeAll(async () => {
    await ensureBuilt();
    port = await freePort();
    redis = await startRedis(port, dir);
    proxy = await startKeyValueProxy(dir, port, namespace);
    client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, { namespace, timeoutMs: 5000 });
  });

  afterAll(async () => {
    client?.close();
    expect(await proxy?.stop()).toBe(0);
    if (redis) await stopRedis(redis, 'SIGTERM');
  });

  it('fails with UNAVAILABLE while Redis is down, recovers, and loses no acknowledged write', async () => {
    const acknowledged = new Map<string, string>();
    const failures: string[] = [];
    let phase: 'up' | 'down' | 'back' = 'up';
    let successesAfterRestart = 0;
    let running = true;
    const worker = async (id: number) => {
      for (let i = 0; running; i++) {
        const key = `w${id}/${i}`;
        const value = `${id}:${i}:${phase}`;
        try {
          await client.set(key, Buffer.from(value));
          acknowledged.set(key, value);
          if (phase === 'back') successesAfterRestart++;
        } catch (err) {
          const code = (err as PrismError).code;
          if (code !== 'E_BACKEND_DOWN') failures.push(`${code}: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const workers = Array.from({ length: 8 }, (_, id) => worker(id));
    await new Promise((r) => setTimeout(r, 800));
    phase = 'down';
    await stopRedis(redis!, 'SIGKILL');
    const downErrors = await client.set('probe', Buffer.from('x')).then(
      () => 'succeeded',
      (err: PrismError) => err.code,
    );
    await new Promise((r) => setTimeout(r, 800));
    redis = await startRedis(port, dir);
    phase = 'back';
    const deadline = Date.now() + 20_000;
    while (successesAfterRestart < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    running = false;
    await Promise.all(workers);

    expect(downErrors).toBe('E_BACKEND_DOWN');
    expect(failures).toEqual([]);
    expect(successesAfterRestart).toBeGreaterThanOrEqual(50);
    const keys = [...acknowledged.keys()];
    const values = await client.batchGet(keys);
    const lost = keys.filter(
      (key, i) =>
        !values.results[i]!.found ||
        Buffer.from(values.results[i]!.value).toString() !== acknowledged.get(key),
    );
    expect(lost).toEqual([]);
  });
});

/**
 * A backend down while the proxy starts: the namespace is not served, its calls get UNAVAILABLE
 * (retryable, not NOT_FOUND) and `prism_proxy_namespace_failing` names it; the proxy tries again
 * with backoff and serves it once the backend is up, with no restart and no reload.
 */
describeWithRedisServer('a namespace whose Redis is down when the proxy starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prism-late-backend-'));
  const namespace = uniqueName('late');
  let port: number;
  let redis: ChildProcess | undefined;
  let proxy: RunningServer | undefined;

  const metrics = async () =>
    (await fetch(`http://127.0.0.1:${proxy!.ready.httpPort as number}/metrics`)).text();

  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
    if (redis) await stopRedis(redis, 'SIGTERM');
  });

  it('is served once Redis comes up; until then calls are UNAVAILABLE and the metrics say it is failing', async () => {
    await ensureBuilt();
    port = await freePort();
    proxy = await startKeyValueProxy(dir, port, namespace);
    const client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, { namespace, timeoutMs: 5000 });
    try {
      const refused = await client.get('k').then(
        () => undefined,
        (err: PrismError) => err,
      );
      expect(refused?.code).toBe('E_UNAVAILABLE');
      expect(refused?.message).toMatch(
        new RegExp(
          `^namespace '${namespace}' is not served yet: its runners failed to start \\(\\d+ attempts?\\); the proxy tries again in \\d+ s`,
        ),
      );
      expect(proxy.logs()).toContain('cannot serve namespace');
      expect(await metrics()).toContain(`prism_proxy_namespace_failing{namespace="${namespace}"} 1`);
      expect(servedNamespaces(await metrics()).has(namespace)).toBe(false);

      redis = await startRedis(port, dir);
      // Attempts follow 1 s, 2 s, 4 s, ... apart; the one after Redis is up starts the namespace.
      await waitUntilServed(proxy, [namespace], 40_000);
      expect(servedNamespaces(await metrics()).has(namespace)).toBe(true);
      expect(await metrics()).not.toContain(`prism_proxy_namespace_failing{namespace="${namespace}"}`);
      await client.set('k', Buffer.from('v'));
      expect(Buffer.from((await client.get('k')).value).toString()).toBe('v');
    } finally {
      client.close();
    }
  }, 60_000);
});
