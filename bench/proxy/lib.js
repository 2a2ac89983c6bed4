// Shared helpers of bench/proxy: gRPC framing, child processes that announce readiness with a JSON
// log line, /proc sampling of CPU and RSS, percentiles, a tiny node:cluster wrapper for the
// bench-only servers, h2load phases, the Prism proxy and bench servers as contenders, and the Go
// builds (anchor, open-loop client).
import { spawn } from 'node:child_process';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import cluster from 'node:cluster';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { URL, fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
export const BENCH = resolve(ROOT, 'bench/proxy');
export const CLK_TCK = 100;

/** A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, bytes. */
export function grpcFrame(bytes) {
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1);
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).copy(frame, 5);
  return frame;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Spawns a process and waits (bounded) for a stdout line that is JSON with `msg === readyMsg`.
 * Returns { child, ready, output(), stop(signal) }.
 */
export async function startProcess(cmd, args, readyMsg, { env = {}, timeoutMs = 60_000 } = {}) {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let buffered = '';
  const exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  const ready = await new Promise((resolveReady, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${cmd} ${args.join(' ')}: not ready in ${timeoutMs} ms\n${out.slice(-4000)}`)),
      timeoutMs,
    );
    child.stderr.on('data', (d) => (out += d));
    child.stdout.on('data', (d) => {
      out += d;
      buffered += d;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        if (!line.includes(readyMsg)) continue;
        try {
          const parsed = JSON.parse(line);
          if (parsed.msg === readyMsg) {
            clearTimeout(timer);
            resolveReady(parsed);
          }
        } catch {
          // not JSON
        }
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(' ')} exited (${code}) before ready\n${out.slice(-4000)}`));
    });
  });
  // Keep draining the pipes so the child never blocks on a full pipe; keep only the tail.
  child.stdout.on('data', () => {
    if (out.length > 200_000) out = out.slice(-50_000);
  });
  return {
    child,
    ready,
    output: () => out,
    stop: async (signal = 'SIGTERM', timeoutMs = 20_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs a command to completion (bounded), returning { code, stdout, stderr }. */
export function runProcess(cmd, args, { timeoutMs = 120_000, env = {}, cwd = ROOT } = {}) {
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? signal, stdout, stderr });
    });
    // A command that is not installed (ENOENT) answers like one that failed, so callers can say so.
    child.once('error', (err) => {
      clearTimeout(timer);
      resolveRun({ code: err.code ?? 'error', stdout, stderr: `${stderr}${err.message}` });
    });
  });
}

/** The pid and its descendants (cluster workers). */
export function processTree(pid) {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${all[i]}/task`)) {
        const kids = readFileSync(`/proc/${all[i]}/task/${task}/children`, 'utf8').trim();
        if (kids) all.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      // gone
    }
  }
  return all;
}

/** CPU seconds (user + system) used so far by these pids. */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / CLK_TCK;
}

/** CPU seconds the whole machine spent busy (all cores), from /proc/stat. */
export function machineBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - f[3] - f[4]) / CLK_TCK;
}

/** Resident set size in MiB of each pid. */
export function rssMiB(pids) {
  return pids.map((pid) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : 0;
    } catch {
      return 0;
    }
  });
}

/**
 * Samples the CPU and RSS of a process tree while `work` runs: returns the work's result with
 * cpu (seconds), peak total RSS and the peak RSS of each process.
 */
export async function measured(pid, work) {
  const pids = processTree(pid);
  const cpu0 = cpuSeconds(pids);
  const busy0 = machineBusySeconds();
  let peak = 0;
  let peakEach = [];
  const sample = () => {
    const each = rssMiB(pids);
    const total = each.reduce((a, b) => a + b, 0);
    if (total > peak) {
      peak = total;
      peakEach = each;
    }
  };
  const timer = setInterval(sample, 250);
  try {
    const result = await work();
    sample();
    return {
      result,
      cpu: cpuSeconds(pids) - cpu0,
      machineBusy: machineBusySeconds() - busy0,
      rssPeakMiB: peak,
      rssEachMiB: peakEach,
      pids,
    };
  } finally {
    clearInterval(timer);
  }
}

/** Load average and the machine, for the record. */
export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown';
  const cores = (cpuinfo.match(/^processor/gm) ?? []).length;
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  return { model, cores, memGiB: +(memKb / 1024 / 1024).toFixed(1), node: process.version };
}

/** A number field (`name=1.5`) of a V8 `--trace-gc-nvp` line; 0 when the line has none. */
export function gcTraceField(line, name) {
  return Number(new RegExp(`(?:^| )${name}=([\\d.]+)`).exec(line)?.[1] ?? 0);
}

export function loadAverage() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/**
 * Bench-only servers: with `workers > 1` the primary forks workers that each call `start()`
 * (which resolves with the bound port) and prints {"msg":"bench server ready","port":…} once all
 * are serving; SIGTERM stops everything. With 1 worker it runs in-process.
 */
export async function serveClustered(workers, start, stop = async () => {}) {
  if (workers > 1 && cluster.isPrimary) {
    const ports = [];
    for (let i = 0; i < workers; i++) {
      const worker = cluster.fork();
      worker.on('message', (m) => {
        if (m?.type !== 'ready') return;
        ports.push(m.port);
        if (ports.length === workers)
          console.log(
            JSON.stringify({ msg: 'bench server ready', port: ports[0], workers, pid: process.pid }),
          );
      });
    }
    const shutdown = () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      setTimeout(() => process.exit(0), 3000).unref();
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
    return;
  }
  const port = await start();
  const done = async () => {
    await stop();
    process.exit(0);
  };
  process.once('SIGTERM', done);
  process.once('SIGINT', done);
  if (cluster.isWorker) process.send({ type: 'ready', port });
  else console.log(JSON.stringify({ msg: 'bench server ready', port, workers: 1, pid: process.pid }));
}

// ---- shared by run.js and goals.js ---------------------------------------------------------------

export const median = (xs) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The namespace's Redis key of `key` as the Prism redis driver stores it for keyvalue pattern `pattern`. */
export const prismRedisKey = (namespace, pattern, key) => `${namespace}:keyvalue/${pattern}/${key}`;

/** The redis-server serving this URL's port, found in /proc, so its CPU is told apart. */
export const redisPid = (redisUrl) => listenerPid(new URL(redisUrl).port || '6379');

/**
 * The process listening on 127.0.0.1 or 0.0.0.0 TCP `port` (IPv4 or IPv6), found in /proc: the
 * socket's inode from /proc/net/tcp{,6}, then the process holding it. Only processes of this user
 * can be seen; undefined when none is.
 */
export function listenerPid(port) {
  const hex = Number(port).toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1].endsWith(`:${hex}`) && f[3] === '0A') inodes.add(`socket:[${f[9]}]`);
    }
  }
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`))
        if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
    } catch {
      // gone, or not ours
    }
  }
  return undefined;
}

/**
 * h2load (C) with a prebuilt gRPC-framed body, `-c connections -m streams`, for `seconds`; the
 * shell's `times` gives h2load's own CPU. h2load counts HTTP 200 as success whatever grpc-status
 * says: check servers with a real client first.
 */
export async function h2load({
  port,
  path,
  bodyFile,
  namespace,
  seconds,
  connections = 8,
  streams = 8,
  scheme = 'http',
  extra = [],
}) {
  const args = [
    ...['-c', String(connections), '-m', String(streams), '-t', '1', '-D', String(seconds)],
    ...['-d', bodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers'],
    ...(namespace ? ['-H', `x-prism-namespace: ${namespace}`] : []),
    ...extra,
    `${scheme}://127.0.0.1:${port}${path}`,
  ];
  const { code, stdout, stderr } = await runProcess(
    'sh',
    ['-c', 'h2load "$@"; rc=$?; times; exit $rc', 'h2load', ...args],
    { timeoutMs: (seconds + 30) * 1000 },
  );
  if (code !== 0) throw new Error(`h2load failed (${code}): ${stderr}\n${stdout}`);
  const num = (re) => Number(re.exec(stdout)?.[1] ?? NaN);
  const secs = (
    stdout
      .trim()
      .split('\n')
      .slice(-1)[0]
      .match(/(\d+)m([\d.]+)s/g) ?? []
  ).map((t) => {
    const [, m, s] = /(\d+)m([\d.]+)s/.exec(t);
    return Number(m) * 60 + Number(s);
  });
  return {
    perSec: num(/finished in [\d.]+m?s, ([\d.]+) req\/s/),
    seconds: num(/finished in ([\d.]+)s/),
    succeeded: num(/(\d+) succeeded/),
    failed: num(/(\d+) failed/) + num(/(\d+) errored/),
    generatorCpu: secs.length >= 2 ? secs[0] + secs[1] : NaN,
  };
}

/**
 * One measured load phase: `load()` resolves { perSec, seconds, succeeded, failed, generatorCpu,
 * clientCpu? }; the server's process tree (`pid`, or none with -1), Redis and the whole machine are
 * sampled meanwhile. Returns calls/s, cores and µs of CPU per call of the server (of the client when
 * the load reports `clientCpu`: direct Redis), of the generator, of Redis and of everything else,
 * and the peak RSS of each process.
 */
export async function loadPhase(pid, load, { redisUrl } = {}) {
  const rpid = redisUrl ? redisPid(redisUrl) : undefined;
  const r0 = rpid ? cpuSeconds([rpid]) : 0;
  const m = await measured(pid, load);
  const redisCpu = rpid ? cpuSeconds([rpid]) - r0 : 0;
  const r = m.result;
  const cpu = r.clientCpu ?? m.cpu;
  const gen = r.generatorCpu ?? 0;
  return {
    perSec: Math.round(r.perSec),
    succeeded: r.succeeded,
    failed: r.failed ?? 0,
    serverCores: +(cpu / r.seconds).toFixed(2),
    serverUsPerCall: +((cpu * 1e6) / r.succeeded).toFixed(1),
    generatorCores: +(gen / r.seconds).toFixed(2),
    redisCores: +(redisCpu / r.seconds).toFixed(2),
    otherCores: +((m.machineBusy - cpu - gen - redisCpu) / r.seconds).toFixed(2),
    rssPeakMiB: +m.rssPeakMiB.toFixed(1),
    rssEachMiB: m.rssEachMiB.map((x) => +x.toFixed(1)),
  };
}

/** A bench-only server (prints "bench server ready"): { port, pid, stop, output }. */
export async function startBenchServer(cmd, args) {
  const p = await startProcess(cmd, args, 'bench server ready', { timeoutMs: 60_000 });
  return { ...p, port: p.ready.port, pid: p.child.pid };
}

/**
 * `prismctl proxy serve` of the package at `root` (this tree by default) with `workers` workers;
 * `--v8-flags` from `v8Flags` (the package's default when undefined; a package older than the
 * flag refuses it), NODE_OPTIONS from `nodeOptions`. Returns { port, pid, httpPorts, stop, output }.
 */
export async function startPrismProxy({
  namespaces,
  backends,
  workers = 1,
  home,
  root = ROOT,
  tls,
  nodeOptions,
  v8Flags,
}) {
  const p = await startProcess(
    process.execPath,
    [
      join(root, 'bin/run.js'),
      ...['proxy', 'serve', '--namespaces', namespaces],
      ...(backends ? ['--backends', backends] : []),
      ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--workers', String(workers)],
      ...(tls ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : []),
      ...(v8Flags !== undefined ? [`--v8-flags=${v8Flags}`] : []),
    ],
    workers > 1 ? 'prism proxy cluster serving' : 'prism proxy serving',
    {
      env: { PRISM_HOME: home, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
      timeoutMs: 90_000,
    },
  );
  return {
    ...p,
    tls: Boolean(tls),
    port: p.ready.port,
    pid: p.child.pid,
    httpPorts: p.ready.httpPorts ?? [p.ready.httpPort],
  };
}

/** A Go toolchain: /usr/local/go/bin/go or `go` on PATH. */
export function goBinary() {
  return ['/usr/local/go/bin/go', ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'go'))].find(
    (p) => existsSync(p),
  );
}

/**
 * Builds the Go package `pkg` of the go-anchor module (`.` the anchor, `./openloop` the open-loop
 * client) into ~/.cache/prism-bench/<name> unless the binary there is newer than the module's
 * sources; modules come from the Go module proxy. Undefined without a Go toolchain.
 */
export async function buildGo(pkg, name, log = () => {}) {
  const go = goBinary();
  if (!go) return undefined;
  const src = join(BENCH, 'go-anchor');
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'prism-bench');
  mkdirSync(cache, { recursive: true });
  const bin = join(cache, name);
  const files = readdirSync(src, { recursive: true }).map((f) => join(src, f));
  const newest = Math.max(...files.map((f) => statSync(f).mtimeMs));
  if (!existsSync(bin) || statSync(bin).mtimeMs < newest) {
    log(`building ${name} with ${go} (first time: module downloads and a few minutes)`);
    const built = await runProcess(go, ['build', '-o', bin, pkg], {
      timeoutMs: 900_000,
      cwd: src,
      env: { GOFLAGS: '-mod=mod' },
    });
    if (built.code !== 0) throw new Error(`go build ${pkg} failed: ${built.stderr}`);
  }
  return bin;
}
