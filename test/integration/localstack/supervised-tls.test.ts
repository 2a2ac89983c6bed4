/**
 * The Docker stack's admin and proxy with TLS, as `dev up` runs them (no containers needed: with
 * no backend components they serve memstore and sqlite): the supervisor starts the proxy once the
 * admin's /healthz answers over HTTPS, the proxy follows the admin over grpcs:// with the local
 * CA, and the readiness probe dev up waits on sees it ready. CI's dev-docker tests cover the rest.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStackConfig } from '../../../src/localstack/catalog.js';
import { ensureDevCertificates } from '../../../src/localstack/dev-tls.js';
import { probeHttp } from '../../../src/localstack/health.js';
import { proxyReadiness } from '../../../src/localstack/up-readiness.js';
import { supervisedChildren } from '../../../src/localstack/up-supervisor.js';
import { Supervisor } from '../../../src/localstack/supervisor.js';
import { ensureBuilt, REPO_ROOT } from '../../support/cli.js';

async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

describe("the Docker stack's supervised admin and proxy over TLS", () => {
  const home = mkdtempSync(join(tmpdir(), 'prism-supervised-tls-'));
  const dir = join(home, 'stack');
  const supervisor = new Supervisor({ spawned: () => undefined, exited: () => undefined });
  const previousHome = process.env.PRISM_HOME;
  let ports: { admin: number; adminMetrics: number; proxy: number; proxyMetrics: number; idp: number };
  let caFile = '';

  beforeAll(async () => {
    await ensureBuilt();
    process.env.PRISM_HOME = home;
    const tls = await ensureDevCertificates();
    caFile = tls.caFile;
    const [admin, adminMetrics, proxy, proxyMetrics, idp] = await freePorts(5);
    ports = {
      admin: admin!,
      adminMetrics: adminMetrics!,
      proxy: proxy!,
      proxyMetrics: proxyMetrics!,
      idp: idp!,
    };
    const config = loadStackConfig({ packageRoot: REPO_ROOT, overrides: { only: ['redis'] } });
    writeFileSync(join(home, 'backends.yaml'), 'backends: {}\n');
    const children = supervisedChildren({
      packageRoot: REPO_ROOT,
      config: { ...config, components: [] },
      ports,
      dir,
      backendsFile: join(home, 'backends.yaml'),
      logFiles: { admin: join(home, 'admin.log'), proxy: join(home, 'proxy.log') },
      tls,
    });
    await supervisor.start(children);
  }, 60_000);

  afterAll(async () => {
    await supervisor.stop();
    if (previousHome === undefined) delete process.env.PRISM_HOME;
    else process.env.PRISM_HOME = previousHome;
  });

  it('the proxy becomes ready over HTTPS with the local CA, and plaintext probes fail', async () => {
    const deadline = Date.now() + 30_000;
    let last = await proxyReadiness(`https://127.0.0.1:${ports.proxyMetrics}`, [], caFile);
    while (!last.healthy && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      last = await proxyReadiness(`https://127.0.0.1:${ports.proxyMetrics}`, [], caFile);
    }
    expect(last).toEqual({ healthy: true, detail: 'serving' });
    expect(await probeHttp(`https://127.0.0.1:${ports.adminMetrics}/healthz`, 1000, 200, caFile)).toEqual({
      healthy: true,
      detail: 'ok',
    });
    expect((await probeHttp(`http://127.0.0.1:${ports.adminMetrics}/healthz`)).healthy).toBe(false);
    expect((await probeHttp(`https://127.0.0.1:${ports.adminMetrics}/healthz`)).detail).toBe(
      'unable to verify the first certificate',
    );
  }, 40_000);
});
