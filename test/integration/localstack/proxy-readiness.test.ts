/**
 * When `dev up` counts the proxy as ready (src/localstack/up-readiness.ts), asked of a real
 * `prismctl proxy serve`: ready once /readyz answers 200 and every namespace is served; not ready,
 * with /readyz's reason, while a runner's backend is down.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { proxyReadiness, waitReady } from '../../../src/localstack/up-readiness.js';
import type { PrismError } from '../../../src/errors.js';
import type { DevState } from '../../../src/localstack/state.js';
import { ensureBuilt } from '../../support/cli.js';
import { describeWithRedisServer, freePort, startRedis, stopRedis } from '../../support/private-redis.js';
import { startProxy, type RunningServer } from '../../support/server-process.js';
import { uniqueName } from '../../support/services.js';

const namespaceYaml = (name: string, backend: string) =>
  `namespace: ${name}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: ${backend} }\n`;

describeWithRedisServer('proxy readiness as dev up decides it, on a real proxy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prism-readiness-'));
  const memNs = uniqueName('ready-mem');
  const redisNs = uniqueName('ready-redis');
  let redis: ChildProcess | undefined;
  let proxy: RunningServer;
  let http: string;

  beforeAll(async () => {
    await ensureBuilt();
    const port = await freePort();
    redis = await startRedis(port, dir);
    writeFileSync(
      join(dir, 'backends.yaml'),
      `backends:\n  memstore: [{ name: mem, endpoint: "memory://" }]\n  redis: [{ name: private, endpoint: "redis://127.0.0.1:${port}" }]\n`,
    );
    writeFileSync(
      join(dir, 'ns.yaml'),
      `${namespaceYaml(memNs, 'memstore')}---\n${namespaceYaml(redisNs, 'redis')}`,
    );
    proxy = await startProxy({ namespaces: join(dir, 'ns.yaml'), backends: join(dir, 'backends.yaml') });
    http = `http://127.0.0.1:${proxy.ready.httpPort as number}`;
  });

  afterAll(async () => {
    await proxy?.stop();
    if (redis) await stopRedis(redis, 'SIGTERM');
  });

  it('is ready when /readyz answers 200 and every namespace asked for is served', async () => {
    expect(await proxyReadiness(http, [memNs, redisNs])).toEqual({ healthy: true, detail: 'serving' });
    expect(await proxyReadiness(http, [])).toEqual({ healthy: true, detail: 'serving' });
  });

  it('is not ready while a namespace it was given is not served, naming it', async () => {
    const absent = uniqueName('absent');
    expect(await proxyReadiness(http, [memNs, absent])).toEqual({
      healthy: false,
      detail: `not serving ${absent} yet`,
    });
  });

  const stateOf = (pid: number): DevState =>
    ({
      pid,
      docker: { logFiles: { admin: join(dir, 'admin.log'), proxy: join(dir, 'proxy.log') } },
    }) as unknown as DevState;

  it('waitReady stops waiting once the supervisor has exited', async () => {
    const started = Date.now();
    await expect(
      waitReady(
        () => proxyReadiness(http, ['never-applied']),
        Date.now() + 20_000,
        'the proxy',
        stateOf(process.pid),
      ),
    ).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: 'the proxy was not ready: its supervisor exited',
    });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("waitReady gives up at the deadline with the last reason and the server's last log lines", async () => {
    // stackAlive takes a process whose command line names supervise-main for a live supervisor.
    const supervisor = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', 'supervise-main'], {
      stdio: 'ignore',
    });
    writeFileSync(join(dir, 'proxy.log'), 'line one\nline two\n');
    try {
      const err = (await waitReady(
        () => proxyReadiness(http, ['never-applied']),
        Date.now() + 500,
        'the proxy',
        stateOf(supervisor.pid!),
      ).then(
        () => undefined,
        (e: unknown) => e,
      )) as PrismError;
      expect(err.code).toBe('E_UNAVAILABLE');
      expect(err.message).toBe(
        'the proxy was not ready: not healthy within the wait timeout; last probe: not serving never-applied yet\n' +
          'Its last log lines:\n  line one\n  line two',
      );
      expect(err.hint).toBe(`logs: ${join(dir, 'admin.log')}, ${join(dir, 'proxy.log')}`);
    } finally {
      supervisor.kill();
    }
  });

  it("is not ready, with /readyz's reason, while a runner's backend is down", async () => {
    await stopRedis(redis!, 'SIGTERM');
    redis = undefined;
    expect(await proxyReadiness(http, [memNs])).toEqual({
      healthy: false,
      detail: `not ready: backends unavailable for ${redisNs}/cache`,
    });
  });

  it('is not ready when nothing answers, with the connection error', async () => {
    const probe = await proxyReadiness(`http://127.0.0.1:${await freePort()}`, []);
    expect(probe.healthy).toBe(false);
    expect(probe.detail).toContain('ECONNREFUSED');
  });
});
