/**
 * The Docker stack's bundled admin and proxy: which processes to run and how (the child specs),
 * the detached supervisor that keeps them running (supervise-main.ts), and stopping it.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { SESSION_OWNER_ROLE } from './bootstrap.js';
import type { StackConfig } from './catalog.js';
import type { DevTlsFiles } from './dev-tls.js';
import type { ComponentResult } from './docker-stack.js';
import { DEV_HOST, type DevPorts } from './ports.js';
import { endpoints, logFile, stackAlive, type DevState } from './state.js';
import type { ChildSpec } from './supervisor.js';

export interface SupervisedServers {
  packageRoot: string;
  config: StackConfig;
  ports: DevPorts;
  /** The stack's working directory (stackDir). */
  dir: string;
  backendsFile: string;
  logFiles: { admin: string; proxy: string };
  /** Serve TLS with these files (the admin's and the proxy's gRPC and HTTP ports). */
  tls?: DevTlsFiles | undefined;
}

/** The admin, then the proxy, which starts once the admin answers /healthz. */
export function supervisedChildren(s: SupervisedServers): ChildSpec[] {
  const { config, ports, dir } = s;
  const run = join(s.packageRoot, 'bin/run.js');
  const e = endpoints({ host: DEV_HOST, ports, ...(s.tls ? { tls: s.tls } : {}) });
  const serverTls = s.tls ? ['--tls-cert', s.tls.certFile, '--tls-key', s.tls.keyFile] : [];
  const pg = config.components.find((c) => c.name === 'postgres');
  // Drivers reach PostgreSQL as the stack's dev superuser; endpoints never carry credentials.
  // Their sessions act as SESSION_OWNER_ROLE (PGOPTIONS, which pg reads like libpq), as the roles
  // Vault leases do: the tables a namespace without Vault creates are then ones a Vault-enabled
  // namespace's leased roles may use and index, and the other way round.
  const pgEnv: Record<string, string> = pg
    ? {
        PGUSER: pg.env.POSTGRES_USER ?? 'postgres',
        ...(pg.env.POSTGRES_PASSWORD ? { PGPASSWORD: pg.env.POSTGRES_PASSWORD } : {}),
        PGOPTIONS: `-c role=${SESSION_OWNER_ROLE}`,
      }
    : {};
  return [
    {
      name: 'admin',
      args: [
        run,
        'admin',
        'serve',
        '--listen',
        `${DEV_HOST}:${ports.admin}`,
        '--metrics-listen',
        `${DEV_HOST}:${ports.adminMetrics}`,
        '--store',
        join(dir, 'admin.db'),
        '--backends',
        s.backendsFile,
        '--heartbeat-interval',
        '1000',
        // The development stack's control plane is for the person who started it (loopback only).
        '--no-auth',
        ...serverTls,
      ],
      logFile: s.logFiles.admin,
    },
    {
      name: 'proxy',
      args: [
        run,
        'proxy',
        'serve',
        '--admin',
        e.admin,
        ...(s.tls ? ['--admin-ca-file', s.tls.caFile] : []),
        '--listen',
        `${DEV_HOST}:${ports.proxy}`,
        '--metrics-listen',
        `${DEV_HOST}:${ports.proxyMetrics}`,
        '--proxy-id',
        `dev-${config.stack}`,
        ...serverTls,
      ],
      env: pgEnv,
      logFile: s.logFiles.proxy,
      // The proxy registers with the admin at start; it waits rather than failing once.
      after: `${e.adminHttp}/healthz`,
      ...(s.tls ? { afterCaFile: s.tls.caFile } : {}),
    },
  ];
}

/**
 * Spawns the detached supervisor of the admin and proxy and returns the state that describes
 * the stack while it starts (phase `starting`); the caller writes it.
 */
export function startSupervisor(
  s: Omit<SupervisedServers, 'logFiles'> & {
    engine: string;
    components: ComponentResult[];
    issuer: string | undefined;
  },
): DevState {
  const { config, ports } = s;
  const logFiles = { admin: logFile('admin'), proxy: logFile('proxy') };
  const pidsFile = join(s.dir, 'pids.json');
  const children = supervisedChildren({ ...s, logFiles });
  const supervisorLog = logFile('supervisor');
  const fd = openSync(supervisorLog, 'a', 0o600);
  const child = spawn(
    process.execPath,
    [join(s.packageRoot, 'dist/localstack/supervise-main.js'), JSON.stringify({ children, pidsFile })],
    { detached: true, stdio: ['ignore', fd, fd], env: process.env },
  );
  closeSync(fd);
  child.unref();
  return {
    stack: 'docker',
    pid: child.pid!,
    phase: 'starting',
    host: DEV_HOST,
    ports,
    startedAt: new Date().toISOString(),
    persist: true,
    dataDir: s.dir,
    logFile: supervisorLog,
    foreground: false,
    namespaces: [],
    skipped: [],
    ...(s.tls ? { tls: s.tls } : {}),
    ...(s.issuer !== undefined ? { issuer: s.issuer } : {}),
    docker: {
      name: config.stack,
      engine: s.engine,
      network: config.network,
      components: s.components,
      pidsFile,
      logFiles,
    },
  };
}

/** SIGTERM to the supervisor (it stops admin and proxy), SIGKILL to its group after the timeout. */
export async function stopSupervisor(pid: number, timeoutMs: number): Promise<boolean> {
  if (!stackAlive(pid)) return true;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return true;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!stackAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
  return false;
}
