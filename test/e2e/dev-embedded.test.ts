import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { get as plainGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt, runCli } from '../support/cli.js';

/** GET http(s)://127.0.0.1:<port><path>; resolves with the status and body. */
async function httpGet(url: string, ca?: string): Promise<{ status: number; body: string }> {
  const get = url.startsWith('https:') ? httpsGet : plainGet;
  return new Promise((resolve, reject) => {
    const req = get(url, ca !== undefined ? { ca } : {}, (res: IncomingMessage) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** `kv get` of `key` in the playground namespace, with a client that takes no hint from the stack. */
async function playgroundGet(endpoint: string, tls?: { caFile: string }): Promise<string> {
  const client = new DataClient(endpoint, { namespace: 'playground', ...(tls ? { tls } : {}) });
  try {
    return Buffer.from((await client.get('greeting')).value).toString();
  } finally {
    client.close();
  }
}

/** Four free loopback ports, none of them the defaults. */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    ports.push((server.address() as { port: number }).port);
  }
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** The flags that move the embedded stack's five listeners. */
function embeddedPortFlags([admin, adminMetrics, proxy, proxyMetrics, idp]: number[]): string[] {
  return [
    ...['--admin-port', String(admin), '--admin-metrics-port', String(adminMetrics)],
    ...['--proxy-port', String(proxy), '--proxy-metrics-port', String(proxyMetrics)],
    ...['--idp-port', String(idp)],
  ];
}

/** Running (a zombie waiting for the container's init to reap it has exited). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('dev up --embedded: the local stack in one background process', () => {
  const home = mkdtempSync(join(tmpdir(), 'prism-dev-e2e-'));
  let portFlags: string[] = [];
  let env: Record<string, string> = {};
  let pid = 0;
  let upStdout = '';
  const dev = (args: string[], extraEnv: Record<string, string> = {}) =>
    runCli(['dev', ...args], { env: { ...env, ...extraEnv } });

  beforeAll(async () => {
    await ensureBuilt();
    const ports = await freePorts(5);
    const proxy = ports[2]!;
    portFlags = embeddedPortFlags(ports);
    // No engine answers here, so a plain `dev up` falls back to the embedded stack.
    env = {
      PRISM_HOME: home,
      PRISM_PROXY_ENDPOINT: `127.0.0.1:${proxy}`,
      DOCKER_HOST: `unix://${join(home, 'no-docker.sock')}`,
    };
  });

  afterAll(async () => {
    await dev(['down']);
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
  });

  it('without a Docker engine, says so in one sentence, starts and returns once ready, saying data does not persist', async () => {
    const up = await dev(['up', ...portFlags]);
    upStdout = up.stdout;
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout.split('\n')[0]).toBe(
      `No Docker engine answered (tried unix://${join(home, 'no-docker.sock')} (no such socket)), so this is the embedded stack: admin, proxy, memstore and sqlite in one process.`,
    );
    expect(up.stdout).toMatch(/^ {2}login {2}http:\/\/127\.0\.0\.1:\d+ {2}\(OpenID issuer\)$/m);
    expect(up.stdout).toMatch(/^Embedded stack ready in \d+\.\d s \(pid \d+\)\.$/m);
    expect(up.stdout).toContain('Data does NOT persist');
    expect(up.stdout).toContain('namespaces: playground');
    expect(up.stdout).toContain('prismctl kv set -n playground greeting hello');
    const state = JSON.parse(readFileSync(join(home, 'dev/state.json'), 'utf8')) as {
      pid: number;
      persist: boolean;
    };
    expect(statSync(join(home, 'dev/state.json')).mode & 0o777).toBe(0o600);
    expect(state.persist).toBe(false);
    pid = state.pid;
    expect(alive(pid)).toBe(true);
  });

  it('a second dev up reports the running stack and starts nothing', async () => {
    const again = await dev(['up', '--embedded', ...portFlags]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`already running and healthy (pid ${pid}`);
    expect(again.stdout).toContain('nothing was started');
  });

  it('serves kv set / kv get through the proxy', async () => {
    expect((await runCli(['kv', 'set', '-n', 'playground', 'greeting', 'hello'], { env })).code).toBe(0);
    const get = await runCli(['kv', 'get', '-n', 'playground', 'greeting'], { env });
    expect(get.code).toBe(0);
    expect(get.stdout).toBe('hello');
  });

  it('serves publish / consume through the proxy', async () => {
    expect((await runCli(['publish', '-n', 'playground', 'playground.events', 'hi'], { env })).code).toBe(0);
    const consume = await runCli(
      ['consume', '-n', 'playground', 'playground.events', '--group', 'e2e', '--max', '1', '--timeout', '5s'],
      { env },
    );
    expect(consume.code).toBe(0);
    expect(consume.stdout).toBe('hi\n');
  });

  it('dev status --json tells each component with its ports, health and persistence', async () => {
    const status = await dev(['status', '--json']);
    expect(status.code).toBe(0);
    const json = JSON.parse(status.stdout) as {
      running: boolean;
      healthy: boolean;
      pid: number;
      persist: boolean;
      namespaces: string[];
      components: Array<{
        name: string;
        state: string;
        health: string;
        ports: { grpc: number; http: number };
        persists: boolean;
      }>;
    };
    expect(json).toMatchObject({
      running: true,
      healthy: true,
      pid,
      persist: false,
      namespaces: ['playground'],
    });
    expect(
      json.components.map((c) => [c.name, c.state, c.health, c.ports.grpc, c.ports.http, c.persists]),
    ).toEqual([
      ['admin', 'running', 'healthy', Number(portFlags[1]), Number(portFlags[3]), false],
      ['proxy', 'running', 'healthy', Number(portFlags[5]), Number(portFlags[7]), false],
    ]);
  });

  it('runs the development OpenID provider, with the device flow prismctl login uses', async () => {
    const issuer = `http://127.0.0.1:${portFlags[9]}`;
    const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
      issuer: string;
      device_authorization_endpoint: string;
    };
    expect(discovery.issuer).toBe(issuer);
    expect(discovery.device_authorization_endpoint).toBe(`${issuer}/device/auth`);
  });

  it('dev env prints export lines for both grpcs:// endpoints, the CA and the OpenID issuer', async () => {
    const out = await dev(['env']);
    expect(out.stdout).toBe(
      `export PRISM_ADMIN_ENDPOINT=grpcs://127.0.0.1:${portFlags[1]}\nexport PRISM_PROXY_ENDPOINT=grpcs://127.0.0.1:${portFlags[5]}\nexport PRISM_TLS_CA_FILE=${join(home, 'dev/tls/ca.pem')}\nexport PRISM_OIDC_ISSUER=http://127.0.0.1:${portFlags[9]}\n`,
    );
  });

  it('serves TLS by default with a local CA it prints: a plaintext client is refused, one trusting the CA is served', async () => {
    const caFile = join(home, 'dev/tls/ca.pem');
    expect(upStdout).toContain(`  tls    on; the certificates chain to the local CA ${caFile}\n`);
    expect(upStdout).toContain(`other clients: export PRISM_TLS_CA_FILE=${caFile}\n`);
    const [proxy, proxyMetrics, adminMetrics] = [portFlags[5], portFlags[7], portFlags[3]];
    await expect(playgroundGet(`127.0.0.1:${proxy}`)).rejects.toMatchObject({ code: 'E_UNREACHABLE' });
    expect(await playgroundGet(`grpcs://localhost:${proxy}`, { caFile })).toBe('hello');
    expect(await playgroundGet(`grpcs://127.0.0.1:${proxy}`, { caFile })).toBe('hello');
    const ca = readFileSync(caFile, 'utf8');
    expect(await httpGet(`https://127.0.0.1:${proxyMetrics}/readyz`, ca)).toEqual({
      status: 200,
      body: 'ready\n',
    });
    expect(await httpGet(`https://localhost:${adminMetrics}/healthz`, ca)).toEqual({
      status: 200,
      body: 'ok\n',
    });
    await expect(httpGet(`http://127.0.0.1:${proxyMetrics}/readyz`)).rejects.toThrow();
    await expect(httpGet(`https://127.0.0.1:${proxyMetrics}/readyz`)).rejects.toThrow(
      /unable to verify the first certificate/,
    );
    expect(statSync(join(home, 'dev/tls')).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, 'dev/tls/server-key.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, 'dev/tls/ca-key.pem')).mode & 0o777).toBe(0o600);
    const status = JSON.parse((await dev(['status', '--json'])).stdout) as { tls: unknown };
    expect(status.tls).toEqual({ enabled: true, caFile });
  });

  it('dev logs shows both components', async () => {
    const logs = await dev(['logs', 'proxy']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('"component":"proxy"');
    expect(logs.stdout).not.toContain('"component":"admin"');
  });

  it('dev down stops the process, removes the state file, and is idempotent', async () => {
    const down = await dev(['down']);
    expect(down.code).toBe(0);
    expect(down.stdout).toContain(`Stopped the embedded stack (pid ${pid})`);
    expect(alive(pid)).toBe(false);
    expect(() => statSync(join(home, 'dev/state.json'))).toThrow();
    const again = await dev(['down']);
    expect(again.stdout).toContain('Nothing is running');
    const status = await dev(['status', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: false, components: [] });
  });

  it('the next dev up reuses the local CA, so clients that trust it keep working', async () => {
    const ca = readFileSync(join(home, 'dev/tls/ca.pem'), 'utf8');
    const up = await dev(['up', '--embedded', ...portFlags]);
    expect(up.code).toBe(0);
    expect(up.stdout).not.toContain('Created a local CA');
    pid = (JSON.parse(readFileSync(join(home, 'dev/state.json'), 'utf8')) as { pid: number }).pid;
    expect(readFileSync(join(home, 'dev/tls/ca.pem'), 'utf8')).toBe(ca);
    expect((await runCli(['kv', 'set', '-n', 'playground', 'greeting', 'again'], { env })).code).toBe(0);
    expect(
      await playgroundGet(`grpcs://localhost:${portFlags[5]}`, { caFile: join(home, 'dev/tls/ca.pem') }),
    ).toBe('again');
    expect((await dev(['down'])).code).toBe(0);
  });
});

describe('dev up --no-tls', () => {
  it('says so and serves gRPC and HTTP in plaintext', async () => {
    await ensureBuilt();
    const home = mkdtempSync(join(tmpdir(), 'prism-dev-e2e-'));
    const ports = await freePorts(5);
    const env = { PRISM_HOME: home, PRISM_PROXY_ENDPOINT: `127.0.0.1:${ports[2]}` };
    try {
      const up = await runCli(['dev', 'up', '--embedded', '--no-tls', ...embeddedPortFlags(ports)], { env });
      expect(up.code).toBe(0);
      expect(up.stdout).toContain('  tls    off (--no-tls): the admin and proxy serve plaintext\n');
      expect(up.stdout).toContain(
        `  proxy  127.0.0.1:${ports[2]}  (ready  http://127.0.0.1:${ports[3]}/readyz)\n`,
      );
      expect(up.stdout).not.toContain('Created a local CA');
      expect(() => statSync(join(home, 'dev/tls/ca.pem'))).toThrow();
      expect((await runCli(['kv', 'set', '-n', 'playground', 'greeting', 'hello'], { env })).code).toBe(0);
      expect(await playgroundGet(`127.0.0.1:${ports[2]}`)).toBe('hello');
      expect(await httpGet(`http://127.0.0.1:${ports[3]}/readyz`)).toEqual({ status: 200, body: 'ready\n' });
      expect(up.stdout).toContain(
        `  web    http://127.0.0.1:${ports[1]}/console  (console: namespaces, proxies, live traffic)\n`,
      );
      const console = await httpGet(`http://127.0.0.1:${ports[1]}/console/namespaces`);
      expect(console.status).toBe(200);
      expect(console.body).toContain('<tr data-namespace="playground">');
      const out = await runCli(['dev', 'env'], { env });
      expect(out.stdout).toContain(
        `export PRISM_PROXY_ENDPOINT=127.0.0.1:${ports[2]}\nunset PRISM_TLS_CA_FILE\n`,
      );
      const status = JSON.parse((await runCli(['dev', 'status', '--json'], { env })).stdout) as {
        tls: unknown;
      };
      expect(status.tls).toEqual({ enabled: false });
    } finally {
      await runCli(['dev', 'down'], { env });
    }
  });
});

describe('dev up with a port taken beforehand', () => {
  it('names the port, the component and the flag, and leaves nothing running', async () => {
    await ensureBuilt();
    const home = mkdtempSync(join(tmpdir(), 'prism-dev-e2e-'));
    const ports = await freePorts(5);
    const proxy = ports[2]!;
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(proxy, '127.0.0.1', resolve));
    try {
      const up = await runCli(['dev', 'up', '--embedded', ...embeddedPortFlags(ports)], {
        env: { PRISM_HOME: home },
      });
      expect(up.code).toBe(1);
      expect(up.stderr).toContain(
        `port 127.0.0.1:${proxy} for the proxy (gRPC) is already taken by another process; free it or move the proxy (gRPC) with --proxy-port <port>`,
      );
      expect(up.stderr).toContain('nothing was started');
      expect(() => statSync(join(home, 'dev/state.json'))).toThrow();
      const status = await runCli(['dev', 'status', '--json'], { env: { PRISM_HOME: home } });
      expect(JSON.parse(status.stdout)).toMatchObject({ running: false });
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});

describe('dev up --docker', () => {
  it('refuses to fall back to the embedded stack', async () => {
    await ensureBuilt();
    const home = mkdtempSync(join(tmpdir(), 'prism-dev-e2e-'));
    const up = await runCli(['dev', 'up', '--docker'], {
      env: { PRISM_HOME: home, DOCKER_HOST: `unix://${join(home, 'no-docker.sock')}` },
    });
    expect(up.code).toBe(1);
    expect(up.stderr).toContain(
      `no Docker engine answered (tried unix://${join(home, 'no-docker.sock')} (no such socket)) and --docker does not fall back`,
    );
    expect(() => statSync(join(home, 'dev/state.json'))).toThrow();
  });
});

describe('dev up with an invalid namespace file', () => {
  it('prints the validation report with file, line and column, and leaves nothing running', async () => {
    await ensureBuilt();
    const home = mkdtempSync(join(tmpdir(), 'prism-dev-e2e-'));
    const bad = join(home, 'bad.yaml');
    writeFileSync(bad, 'namespace: Bad_Name\nteam: platform\npatterns: []\n');
    const up = await runCli(
      ['dev', 'up', '--embedded', '--namespaces', bad, ...embeddedPortFlags(await freePorts(5))],
      { env: { PRISM_HOME: home } },
    );
    expect(up.code).not.toBe(0);
    expect(`${up.stdout}${up.stderr}`).toMatch(
      new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:12`),
    );
    expect(up.stderr).toContain('the stack was not started');
    expect(() => statSync(join(home, 'dev/state.json'))).toThrow();
    const status = await runCli(['dev', 'status', '--json'], { env: { PRISM_HOME: home } });
    expect(JSON.parse(status.stdout)).toMatchObject({ running: false });
  });
});
