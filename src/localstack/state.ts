import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { prismHome } from '../config/home.js';
import type { NetworkMode } from './catalog.js';
import type { DevTlsFiles } from './dev-tls.js';
import type { ComponentResult } from './docker-stack.js';
import type { DevPorts } from './ports.js';

/** The Docker stack's part of the state: its containers and the supervised servers. */
export interface DockerStackState {
  /** The stack name in container names and labels. */
  name: string;
  /** The engine it runs on (unix:// or tcp://). */
  engine: string;
  network: NetworkMode;
  components: ComponentResult[];
  /** The supervisor's file of child pids. */
  pidsFile: string;
  logFiles: { admin: string; proxy: string };
}

/** What `dev up` leaves behind for `dev status`, `dev env`, `dev logs` and `dev down`. */
export interface DevState {
  stack: 'embedded' | 'docker';
  /** The embedded stack's process, or the Docker stack's supervisor of admin and proxy. */
  pid: number;
  docker?: DockerStackState;
  phase: 'starting' | 'ready';
  host: string;
  ports: DevPorts;
  startedAt: string;
  persist: boolean;
  dataDir: string;
  logFile: string;
  foreground: boolean;
  namespaces: string[];
  skipped: Array<{ namespace: string; reason: string }>;
  /** The OpenID issuer of the stack: the embedded provider, or Dex in the Docker stack. */
  issuer?: string;
  /** The admin and proxy serve TLS with these files; absent after `dev up --no-tls`. */
  tls?: DevTlsFiles;
  /** Docker stack: a hash of the namespace files last applied (see docker-up.ts). */
  namespaceDigest?: string;
}

export function devDir(): string {
  const dir = join(prismHome(), 'dev');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Where --persist keeps the admin store and sqlite data. */
export function persistentDataDir(): string {
  return join(devDir(), 'data');
}

export function stateFile(): string {
  return join(devDir(), 'state.json');
}

export function logsDir(): string {
  const dir = join(devDir(), 'logs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export function embeddedLogFile(): string {
  return join(logsDir(), 'embedded.log');
}

/** A log file under <prism home>/dev/logs: supervisor.log, admin.log, proxy.log. */
export function logFile(name: string): string {
  return join(logsDir(), `${name}.log`);
}

/**
 * The last `lines` lines a log file got after byte `from` (at most its last 64 KiB), each
 * indented two spaces, for an error message; '' when there are none or the file is unreadable.
 */
export function tailLog(file: string, lines: number, from = 0): string {
  try {
    const size = statSync(file).size;
    const start = Math.min(size, Math.max(from, size - 65_536));
    const buffer = Buffer.alloc(size - start);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buffer, 0, buffer.length, start);
    } finally {
      closeSync(fd);
    }
    const text = buffer.toString('utf8').trim();
    if (text === '') return '';
    return text
      .split('\n')
      .slice(-lines)
      .map((l) => `  ${l}`)
      .join('\n');
  } catch {
    return '';
  }
}

export function readState(file = stateFile()): DevState | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DevState;
  } catch {
    return undefined;
  }
}

/** Written atomically with mode 0600. */
export function writeState(state: DevState, file = stateFile()): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

export function removeState(file = stateFile()): void {
  rmSync(file, { force: true });
}

/** True when `pid` is alive and (where /proc tells) still a prismctl embedded stack. */
export function stackAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // A zombie (exited, not yet reaped by its new parent) has stopped: it holds no port or file.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return (
      cmdline.includes('serve-embedded') || cmdline.includes('supervise-main') || cmdline.includes('dev\0up')
    );
  } catch {
    return true;
  }
}

/** The stack's endpoints as clients dial them: grpcs:// and https:// when it serves TLS. */
export function endpoints(state: Pick<DevState, 'host' | 'ports' | 'tls'>): {
  admin: string;
  proxy: string;
  adminHttp: string;
  proxyHttp: string;
  /** The admin's web console (docs/console.md). */
  console: string;
} {
  const { host, ports } = state;
  const grpc = state.tls ? 'grpcs://' : '';
  const http = state.tls ? 'https' : 'http';
  return {
    admin: `${grpc}${host}:${ports.admin}`,
    proxy: `${grpc}${host}:${ports.proxy}`,
    adminHttp: `${http}://${host}:${ports.adminMetrics}`,
    proxyHttp: `${http}://${host}:${ports.proxyMetrics}`,
    console: `${http}://${host}:${ports.adminMetrics}/console`,
  };
}

export function uptimeSeconds(state: Pick<DevState, 'startedAt'>, now = Date.now()): number {
  return Math.max(0, Math.round((now - Date.parse(state.startedAt)) / 1000));
}

/** 42s, 3m7s, 2h5m. */
export function uptime(state: Pick<DevState, 'startedAt'>, now = Date.now()): string {
  return formatSeconds(uptimeSeconds(state, now));
}

/** 42s, 3m7s, 2h5m. */
export function formatSeconds(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
