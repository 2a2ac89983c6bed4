import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp } from '../../../src/auth/dev-idp.js';
import { loadStackConfig, type ProbeSpec } from '../../../src/localstack/catalog.js';
import { probeOnce, waitHealthy, type ProbeTarget } from '../../../src/localstack/probes.js';
import { REPO_ROOT } from '../../support/cli.js';
import { freePort } from '../../support/ports.js';
import { startBaoServer, type BaoServer } from '../../support/bao-server.js';
import { vaultApi } from '../../support/real-vault.js';
import {
  describeWithService,
  kafkaBrokers,
  natsUrl,
  postgresUrl,
  redisUrl,
  vaultAddr,
} from '../../support/services.js';

/**
 * The catalog's readiness probes (templates/dev/components.yaml), each built from the catalog's own
 * probe spec and aimed at the real services of scripts/test-services.sh. Vault's probe goes to the
 * real OpenBao: the shared test server, and a server of the test's own where it must be sealed or
 * start late. Dex cannot run here (no registry ships it), so its probe goes to the development
 * OpenID provider's discovery document, served under Dex's /dex prefix.
 */
const catalog = loadStackConfig({ packageRoot: REPO_ROOT });
const probeOf = (component: string): ProbeSpec => {
  const found = catalog.components.find((c) => c.name === component);
  if (!found) throw new Error(`the catalog has no ${component}`);
  return found.probe;
};
const hostPort = (url: string) => {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
};
/** The NATS monitor port; scripts/test-services.sh has no URL variable for it, only this one. */
const natsMonitorPort = () => Number(process.env.PRISM_TEST_NATS_MONITOR_PORT ?? 8222);

const closedPort = async (spec: ProbeSpec): Promise<ProbeTarget> => ({
  spec,
  host: '127.0.0.1',
  port: await freePort(),
});

describe('the catalog probe specs', () => {
  it('name a probe type and a port of their own component for every component', () => {
    expect(
      Object.fromEntries(catalog.components.map((c) => [c.name, [c.probe.type, c.probe.port in c.ports]])),
    ).toEqual({
      redis: ['redis', true],
      nats: ['nats', true],
      postgres: ['postgres', true],
      kafka: ['kafka', true],
      dex: ['http', true],
      vault: ['http', true],
    });
  });
});

await describeWithService('redis', 'the redis probe (PING)', () => {
  it('is healthy against the live Redis, with PONG as the detail', async () => {
    expect(await probeOnce({ spec: probeOf('redis'), ...hostPort(redisUrl()) })).toEqual({
      healthy: true,
      detail: 'PONG',
    });
  });

  it('is unhealthy against a closed port, saying the connection was refused', async () => {
    const target = await closedPort(probeOf('redis'));
    expect(await probeOnce(target)).toEqual({
      healthy: false,
      detail: `connect ECONNREFUSED 127.0.0.1:${target.port}`,
    });
  });
});

await describeWithService('postgres', 'the postgres probe (SELECT 1)', () => {
  const url = new URL(postgresUrl());
  const target = (password: string): ProbeTarget => ({
    spec: probeOf('postgres'),
    host: url.hostname,
    port: Number(url.port),
    user: decodeURIComponent(url.username),
    password,
  });

  it('is healthy against the live PostgreSQL with the right user and password', async () => {
    expect(await probeOnce(target(decodeURIComponent(url.password)))).toEqual({
      healthy: true,
      detail: 'SELECT 1',
    });
  });

  it('is unhealthy with a wrong password, naming the user but never the password', async () => {
    const probe = await probeOnce(target('not-the-password-4711'));
    expect(probe).toEqual({
      healthy: false,
      detail: `password authentication failed for user "${decodeURIComponent(url.username)}"`,
    });
    expect(probe.detail).not.toContain('4711');
  });

  it('is unhealthy against a closed port, saying the connection was refused', async () => {
    const closed = { ...target('x'), port: await freePort() };
    expect(await probeOnce(closed)).toEqual({
      healthy: false,
      detail: `connect ECONNREFUSED 127.0.0.1:${closed.port}`,
    });
  });
});

await describeWithService('nats', 'the nats probe (monitor /healthz)', () => {
  it("is healthy against the live NATS monitor port, with the server's status as the detail", async () => {
    const probe = await probeOnce({
      spec: probeOf('nats'),
      host: new URL(natsUrl()).hostname,
      port: natsMonitorPort(),
    });
    expect(probe.healthy).toBe(true);
    expect(JSON.parse(probe.detail)).toEqual({ status: 'ok' });
  });

  it('is unhealthy against a closed port, saying the connection was refused', async () => {
    const target = await closedPort(probeOf('nats'));
    expect(await probeOnce(target)).toEqual({
      healthy: false,
      detail: `connect ECONNREFUSED 127.0.0.1:${target.port}`,
    });
  });

  it('as a redis probe, is unhealthy against a port that answers something else, quoting the answer', async () => {
    // The NATS client port greets with INFO: an open port is not a healthy Redis.
    const probe = await probeOnce({ spec: probeOf('redis'), ...hostPort(natsUrl()) });
    expect(probe.healthy).toBe(false);
    expect(probe.detail).toMatch(/^INFO \{/);
  });
});

await describeWithService('kafka', 'the kafka probe (metadata)', () => {
  const [host, port] = kafkaBrokers()[0]!.split(':') as [string, string];

  it('is healthy against the live broker, counting brokers and naming the controller', async () => {
    const probe = await probeOnce({ spec: probeOf('kafka'), host, port: Number(port) });
    expect(probe.healthy).toBe(true);
    expect(probe.detail).toMatch(/^1 broker\(s\), controller \d+$/);
  });

  it('is unhealthy against a closed port, saying the connection was refused', async () => {
    const target = await closedPort(probeOf('kafka'));
    expect(await probeOnce(target)).toEqual({
      healthy: false,
      detail: `Connection error: connect ECONNREFUSED 127.0.0.1:${target.port}`,
    });
  });
});

describe("the http probe with Dex's discovery path", () => {
  let idp: DevIdp;
  let dexPrefix: Server;
  let prefixPort = 0;

  beforeAll(async () => {
    idp = new DevIdp();
    await idp.start();
    // The development provider serves discovery at its root; Dex serves it under /dex. This
    // forwarder puts the provider's answers under /dex so the catalog's own path is probed.
    const upstream = new URL(idp.issuer);
    dexPrefix = createServer((req, res) => {
      const path = req.url ?? '/';
      if (!path.startsWith('/dex/')) {
        res.writeHead(404).end();
        return;
      }
      const forward = request(
        { host: upstream.hostname, port: upstream.port, path: path.slice('/dex'.length), method: req.method },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.writeHead(502).end());
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => dexPrefix.listen(0, '127.0.0.1', resolve));
    prefixPort = (dexPrefix.address() as AddressInfo).port;
  });

  afterAll(async () => {
    dexPrefix?.closeAllConnections();
    await new Promise<void>((resolve) => (dexPrefix ? dexPrefix.close(() => resolve()) : resolve()));
    await idp?.stop();
  });

  it("is healthy when the catalog's path answers an OpenID discovery document", async () => {
    const spec = probeOf('dex');
    expect(spec.path).toBe('/dex/.well-known/openid-configuration');
    const probe = await probeOnce({ spec, host: '127.0.0.1', port: prefixPort });
    expect(probe.healthy).toBe(true);
    // The detail is the first 200 characters of the document.
    expect(probe.detail).toMatch(/^\{"authorization_endpoint":"http:\/\/127\.0\.0\.1:\d+\/auth"/);
  });

  it('is unhealthy when the server is up but the path is not found, so an open port is not enough', async () => {
    const port = Number(new URL(idp.issuer).port);
    const probe = await probeOnce({ spec: probeOf('dex'), host: '127.0.0.1', port });
    expect(probe.healthy).toBe(false);
  });

  it('is unhealthy against a closed port, saying the connection was refused', async () => {
    const target = await closedPort(probeOf('dex'));
    expect(await probeOnce(target)).toEqual({
      healthy: false,
      detail: `connect ECONNREFUSED 127.0.0.1:${target.port}`,
    });
  });
});

await describeWithService('vault', "the http probe with Vault's sys/health", () => {
  let own: BaoServer | undefined;

  afterAll(async () => {
    await own?.stop();
  });

  it('is healthy when Vault is initialized and unsealed, with the start of its health document as the detail', async () => {
    expect(probeOf('vault').path).toBe('/v1/sys/health');
    const probe = await probeOnce({ spec: probeOf('vault'), ...hostPort(vaultAddr()) });
    expect(probe.healthy).toBe(true);
    expect(probe.detail).toMatch(/^\{"initialized":true,"sealed":false,"standby":false,/);
  });

  it('is unhealthy while Vault is sealed (503), with the start of its health document as the detail', async () => {
    // Sealing the shared server would stop every other test: this one seals a server of its own.
    own = await startBaoServer();
    await vaultApi('PUT', 'sys/seal', undefined, own.rootToken, own.address);
    const res = await fetch(`${own.address}/v1/sys/health`);
    expect(res.status).toBe(503);
    const probe = await probeOnce({ spec: probeOf('vault'), ...hostPort(own.address) });
    expect(probe.healthy).toBe(false);
    expect(probe.detail).toMatch(/^\{"initialized":true,"sealed":true,/);
  });
});

describe('waiting for a component to become healthy', () => {
  it('keeps probing until the deadline, then returns the last probe detail', async () => {
    const target = await closedPort(probeOf('redis'));
    let probes = 0;
    const deadline = Date.now() + 700;
    const probe = await waitHealthy(
      target,
      deadline,
      async () => {
        probes += 1;
        return undefined;
      },
      50,
    );
    expect(probe).toEqual({
      healthy: false,
      detail: `not healthy within the wait timeout; last probe: connect ECONNREFUSED 127.0.0.1:${target.port}`,
    });
    expect(probes).toBeGreaterThan(1);
    expect(Date.now()).toBeGreaterThanOrEqual(deadline);
  });

  it('stops early with the reason its stop callback reports', async () => {
    const target = await closedPort(probeOf('redis'));
    let asked = 0;
    const probe = await waitHealthy(
      target,
      Date.now() + 60_000,
      async () => {
        asked += 1;
        return asked === 2 ? 'the container exited with code 1' : undefined;
      },
      20,
    );
    expect(probe).toEqual({ healthy: false, detail: 'the container exited with code 1' });
    expect(asked).toBe(2);
  });
});

await describeWithService('vault', 'waiting for Vault to become healthy', () => {
  it('returns the healthy probe once the service starts answering', async () => {
    const port = await freePort();
    let own: BaoServer | undefined;
    let asked = 0;
    try {
      const probe = await waitHealthy(
        { spec: probeOf('vault'), host: '127.0.0.1', port },
        Date.now() + 60_000,
        async () => {
          asked += 1;
          if (asked === 2) own = await startBaoServer({ port });
          return undefined;
        },
        20,
      );
      expect(probe.healthy).toBe(true);
      expect(probe.detail).toMatch(/^\{"initialized":true,"sealed":false,/);
      expect(asked).toBe(2);
    } finally {
      await own?.stop();
    }
  });

  it('does not ask whether to stop when the first probe is healthy', async () => {
    let asked = 0;
    const probe = await waitHealthy(
      { spec: probeOf('vault'), ...hostPort(vaultAddr()) },
      Date.now() + 60_000,
      async () => {
        asked += 1;
        return 'should not be asked';
      },
    );
    expect(probe.healthy).toBe(true);
    expect(asked).toBe(0);
  });
});
