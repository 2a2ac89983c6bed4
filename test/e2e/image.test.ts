/**
 * The prismctl OCI image (Dockerfile at the repository root), built with the classic builder of
 * the private engine of scripts/services/docker.sh (`docker build`, no BuildKit) on the Node 24
 * base image scripts/images/build-node-base.sh makes from Debian packages (no registry is
 * reachable), then run with host networking: its embedded stack answers /healthz on loopback and
 * a kv call from the host goes through its proxy.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { probeDocker, removeContainer, TEST_LABEL } from '../support/docker-service.js';
import { freePort } from '../support/ports.js';
import { describeIfPresent } from '../support/services.js';

const engine = await probeDocker();
const IMAGE = 'prism-local/prismctl:test';
const BUILD_TIMEOUT_MS = 20 * 60_000;
const DOCKER = process.env.DOCKER_BIN || '/usr/bin/docker';

function sh(
  cmd: string,
  args: string[],
  timeout = BUILD_TIMEOUT_MS,
): Promise<{ code: number; stdout: string; out: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: REPO_ROOT, timeout, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
          stdout,
          out: stdout + stderr,
        }),
    );
  });
}

async function untilOk(url: string, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return res;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

describeIfPresent('a Docker engine', engine, 'the prismctl image', () => {
  const docker = engine.ok ? engine.docker : undefined!;
  let containerId = '';
  let buildLog = '';

  beforeAll(async () => {
    const base = await sh('bash', ['scripts/images/build-node-base.sh']);
    expect(base.code, base.out).toBe(0);
    const baseImage = base.stdout.trim();
    expect(baseImage).toBe('prism-local/node:24');
    // The classic builder, as any CI without BuildKit runs it; --network host for the npm registry.
    const build = await sh(DOCKER, [
      'build',
      '--network',
      'host',
      '--build-arg',
      `BASE_IMAGE=${baseImage}`,
      '-t',
      IMAGE,
      '.',
    ]);
    buildLog = build.out;
    expect(build.code, build.out.slice(-4000)).toBe(0);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    if (containerId) await removeContainer(docker, containerId);
  });

  it('is built by the classic builder and runs prismctl as a non-root user', async () => {
    expect(buildLog).not.toMatch(/buildkit/i);
    const info = await docker.getImage(IMAGE).inspect();
    expect(info.Config.User).toBe('10001:10001');
    expect(info.Config.Entrypoint).toEqual(['prismctl']);
    const version = await sh(DOCKER, ['run', '--rm', '--label', TEST_LABEL, IMAGE, '--version'], 60_000);
    expect(version.code, version.out).toBe(0);
    expect(version.out).toMatch(/^prismctl\/0\.1\.0 linux-x64 node-v24\.\d+\.\d+\n$/);
    const id = await sh(DOCKER, ['run', '--rm', '--label', TEST_LABEL, '--entrypoint', 'id', IMAGE], 60_000);
    expect(id.out.trim()).toBe('uid=10001 gid=10001 groups=10001');
  }, 240_000); // each `docker run` copies the image's file system on vfs

  it('serves the embedded stack: /healthz on the host and a kv call through its proxy', async () => {
    const [admin, adminMetrics, proxy, proxyMetrics, idp] = await Promise.all(
      Array.from({ length: 5 }, () => freePort()),
    );
    const run = await sh(
      DOCKER,
      [
        'run',
        '-d',
        '--network',
        'host',
        '--label',
        TEST_LABEL,
        IMAGE,
        'dev',
        'up',
        '--embedded',
        '--foreground',
        '--no-tls',
        ...['--admin-port', String(admin), '--admin-metrics-port', String(adminMetrics)],
        ...['--proxy-port', String(proxy), '--proxy-metrics-port', String(proxyMetrics)],
        ...['--idp-port', String(idp)],
      ],
      60_000,
    );
    expect(run.code, run.out).toBe(0);
    containerId = run.stdout.trim();
    try {
      const health = await untilOk(`http://127.0.0.1:${proxyMetrics}/healthz`, 120_000);
      expect(health.status).toBe(200);
      expect((await untilOk(`http://127.0.0.1:${adminMetrics}/healthz`, 10_000)).status).toBe(200);
      await untilOk(`http://127.0.0.1:${proxyMetrics}/readyz`, 60_000);
      const proxyFlag = ['--proxy', `127.0.0.1:${proxy}`];
      const set = await runCli(['kv', 'set', '-n', 'playground', 'greeting', 'from-the-host', ...proxyFlag]);
      expect(set.code, set.stderr).toBe(0);
      const get = await runCli(['kv', 'get', '-n', 'playground', 'greeting', ...proxyFlag]);
      expect(get.code, get.stderr).toBe(0);
      expect(get.stdout).toBe('from-the-host');
    } catch (err) {
      const logs = await sh(DOCKER, ['logs', '--tail', '60', containerId], 30_000);
      throw new Error(`${(err as Error).message}\ncontainer logs:\n${logs.out}`);
    }
  }, 240_000);
});
