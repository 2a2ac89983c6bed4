/** The pieces of `dev up` on Docker that need no engine: preflight, the backends file, the supervised servers. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { stackBackends, writeBackends } from '../../../src/localstack/backends-file.js';
import { loadStackConfig } from '../../../src/localstack/catalog.js';
import { DEFAULT_DEV_PORTS } from '../../../src/localstack/ports.js';
import type { DevState } from '../../../src/localstack/state.js';
import { checkBeforeUp, serversRunning } from '../../../src/localstack/up-preflight.js';
import { supervisedChildren } from '../../../src/localstack/up-supervisor.js';
import { REPO_ROOT } from '../../support/cli.js';

const config = (only?: string[]) =>
  loadStackConfig({ packageRoot: REPO_ROOT, overrides: only ? { only } : {} });

/** A live process that stackAlive takes for a supervisor (its command line names supervise-main). */
let supervisor: ChildProcess;
beforeAll(() => {
  supervisor = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', 'supervise-main'], {
    stdio: 'ignore',
  });
});
afterAll(() => {
  supervisor.kill();
});

/** Four loopback ports free a moment ago. */
async function freePorts(): Promise<number[]> {
  const servers = Array.from({ length: 4 }, () => createServer());
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

function dockerState(overrides: Partial<DevState> = {}): DevState {
  return {
    stack: 'docker',
    pid: supervisor.pid!,
    phase: 'ready',
    host: '127.0.0.1',
    ports: DEFAULT_DEV_PORTS,
    startedAt: '2026-01-01T00:00:00.000Z',
    persist: true,
    dataDir: '/tmp/x',
    logFile: '/tmp/x.log',
    foreground: false,
    namespaces: [],
    skipped: [],
    docker: {
      name: 'dev',
      engine: 'unix:///var/run/docker.sock',
      network: 'bridge',
      components: [],
      pidsFile: '/tmp/pids.json',
      logFiles: { admin: '/tmp/admin.log', proxy: '/tmp/proxy.log' },
    },
    ...overrides,
  };
}

/** A pid that is not running: a finished child's. */
const deadPid = 2 ** 22 + 17;

describe('dev up preflight', () => {
  it('counts the servers as running only for this stack with a live supervisor', () => {
    expect(serversRunning(dockerState(), 'dev')).toBe(true);
    expect(serversRunning(dockerState(), 'other')).toBe(false);
    expect(serversRunning(dockerState({ pid: deadPid }), 'dev')).toBe(false);
    expect(serversRunning(dockerState({ stack: 'embedded' }), 'dev')).toBe(false);
    expect(serversRunning(undefined, 'dev')).toBe(false);
  });

  it('refuses to start while another live stack holds the state file, saying how to stop it', async () => {
    const other = dockerState({ stack: 'embedded' });
    await expect(checkBeforeUp(other, false, DEFAULT_DEV_PORTS)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: `another local stack (embedded, pid ${supervisor.pid}) is running`,
      hint: 'stop it with `prismctl dev down` first',
    });
  });

  it('names a taken proxy port and says nothing was started', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as { port: number }).port;
    try {
      const err = await checkBeforeUp(undefined, false, { ...DEFAULT_DEV_PORTS, proxy: port }).then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string; hint: string },
      );
      expect(err?.code).toBe('E_UNAVAILABLE');
      expect(err?.message).toContain(`${port}`);
      expect(err?.message).toContain('--proxy-port');
      expect(err?.hint).toBe('nothing was started');
    } finally {
      squatter.close();
    }
  });

  it('does not check the ports of servers that are already running (they hold them)', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as { port: number }).port;
    try {
      await expect(
        checkBeforeUp(dockerState(), true, { ...DEFAULT_DEV_PORTS, proxy: port }),
      ).resolves.toBeUndefined();
    } finally {
      squatter.close();
    }
  });

  it('lets a dead stack’s leftover state file be replaced', async () => {
    const [admin, adminMetrics, proxy, proxyMetrics] = (await freePorts()) as [
      number,
      number,
      number,
      number,
    ];
    await expect(
      checkBeforeUp(dockerState({ pid: deadPid }), false, {
        ...DEFAULT_DEV_PORTS,
        admin,
        adminMetrics,
        proxy,
        proxyMetrics,
      }),
    ).resolves.toBeUndefined();
  });
});

describe("the admin's backends file", () => {
  it('lists each running backend container by its stack name and port, plus memstore and sqlite', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-backends-'));
    expect(stackBackends(dir, config())).toEqual({
      memstore: [{ name: 'local-memstore', endpoint: 'memory://' }],
      sqlite: [{ name: 'local-sqlite', endpoint: `file:${join(dir, 'sqlite')}` }],
      redis: [{ name: 'prism-dev-redis', endpoint: 'redis://127.0.0.1:6379' }],
      nats: [{ name: 'prism-dev-nats', endpoint: 'nats://127.0.0.1:4222' }],
      postgres: [{ name: 'prism-dev-postgres', endpoint: 'postgres://127.0.0.1:5432/prism' }],
      kafka: [{ name: 'prism-dev-kafka', endpoint: 'kafka://127.0.0.1:9092' }],
    });
  });

  it('leaves out backends the stack does not run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-backends-'));
    expect(Object.keys(stackBackends(dir, config(['redis'])))).toEqual(['memstore', 'sqlite', 'redis']);
  });

  it('is written readable by its owner only, as YAML the admin reads back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-backends-'));
    const file = writeBackends(dir, config(['redis']));
    expect(file).toBe(join(dir, 'backends.yaml'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n')[0]).toBe('# Written by prismctl dev up for stack dev.');
    expect(parse(text)).toEqual({ backends: stackBackends(dir, config(['redis'])) });
  });
});

describe('the supervised admin and proxy', () => {
  const servers = (only?: string[]) =>
    supervisedChildren({
      packageRoot: '/pkg',
      config: config(only),
      ports: DEFAULT_DEV_PORTS,
      dir: '/home/me/.prism/dev/docker-dev',
      backendsFile: '/home/me/.prism/dev/docker-dev/backends.yaml',
      logFiles: { admin: '/logs/admin.log', proxy: '/logs/proxy.log' },
    });

  it('runs the admin on the stack’s ports with its store and backends file in the stack directory', () => {
    const [admin] = servers();
    expect(admin).toEqual({
      name: 'admin',
      args: [
        '/pkg/bin/run.js',
        ...['admin', 'serve', '--listen', '127.0.0.1:8981', '--metrics-listen', '127.0.0.1:8982'],
        ...['--store', '/home/me/.prism/dev/docker-dev/admin.db'],
        ...['--backends', '/home/me/.prism/dev/docker-dev/backends.yaml', '--heartbeat-interval', '1000'],
        '--no-auth',
      ],
      logFile: '/logs/admin.log',
    });
  });

  it('starts the proxy after the admin answers, reaching PostgreSQL as the stack user acting as prism_owner', () => {
    const proxy = servers()[1];
    expect(proxy).toEqual({
      name: 'proxy',
      args: [
        '/pkg/bin/run.js',
        ...['proxy', 'serve', '--admin', '127.0.0.1:8981', '--listen', '127.0.0.1:50090'],
        ...['--metrics-listen', '127.0.0.1:50091', '--proxy-id', 'dev-dev'],
      ],
      env: { PGUSER: 'prism', PGPASSWORD: 'prism', PGOPTIONS: '-c role=prism_owner' },
      logFile: '/logs/proxy.log',
      after: 'http://127.0.0.1:8982/healthz',
    });
  });

  it('gives the proxy no PostgreSQL settings when the stack runs no PostgreSQL', () => {
    expect(servers(['redis'])[1]?.env).toEqual({});
  });
});
