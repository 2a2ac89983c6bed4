/**
 * `proxy serve --workers N`: one primary process forks N workers with node:cluster; every worker
 * runs the same ProxyServer and they share the gRPC port (the primary accepts connections and
 * hands them round-robin to the workers, so balancing is per connection, not per call).
 *
 * Metrics port: per-worker offset. Worker i serves /healthz, /readyz and /metrics on
 * `<metrics port> + i`, each with its own counters (scrape every worker port). With metrics port 0
 * the primary reserves a free port per worker before forking it. Each worker logs its own
 * "prism proxy serving" line; when all are serving, the primary logs "prism proxy cluster serving"
 * with the shared `port` and the list of `httpPorts`.
 *
 * SIGTERM (or SIGINT) to the primary is forwarded to every worker as SIGTERM; each drains as a
 * single proxy does, and the primary exits 0 when all of them exited 0. A worker that dies after
 * it was serving is replaced; one that dies before it was ever serving (bad flags, port in use)
 * stops the whole cluster with exit code 1.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { splitHostPort } from '../transport/listen-address.js';
import { PrismError } from '../errors.js';

const INDEX_ENV = 'PRISM_PROXY_WORKER_INDEX';
const METRICS_ENV = 'PRISM_PROXY_WORKER_METRICS_LISTEN';
const READY = 'prism-proxy-worker-ready';

interface ReadyMessage {
  type: typeof READY;
  port: number;
  httpPort: number;
}

/** `--workers`: a positive integer, or `auto` for one worker per CPU. */
export function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `--workers must be a positive integer or 'auto', got '${value}'`,
    );
  return n;
}

export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[INDEX_ENV] !== undefined;
}

/** This worker's index (0 outside a cluster). */
export function workerIndex(): number {
  return Number(process.env[INDEX_ENV] ?? 0);
}

/** The metrics address this process serves: the primary chose it for a worker. */
export function workerMetricsListen(fallback: string): string {
  return (isClusterWorker() && process.env[METRICS_ENV]) || fallback;
}

/**
 * A signal sent to the whole process group (timeout, systemd, a terminal's Ctrl-C) reaches a worker
 * as well as the SIGTERM the primary forwards: the second one must not kill a draining worker.
 */
export function absorbRepeatedSignals(): void {
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
}

/** A worker tells the primary it is serving. */
export function notifyWorkerReady(port: number, httpPort: number): void {
  if (isClusterWorker() && process.send) process.send({ type: READY, port, httpPort } satisfies ReadyMessage);
}

/** A worker that has stopped serving closes its IPC channel, the one handle keeping it alive. */
export function releaseWorker(): void {
  if (isClusterWorker()) cluster.worker?.disconnect();
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface PrimaryOptions {
  workers: number;
  metricsListen: string;
  logger: Logger;
  /** How long a worker may take to drain before it is killed. */
  drainTimeoutMs: number;
}

/** Runs the primary until it is told to stop; resolves with the exit code. */
export async function runPrimary(options: PrimaryOptions): Promise<number> {
  const { workers, logger } = options;
  const [metricsHost, metricsPort] = splitHostPort(options.metricsListen);
  const metricsFor = async (i: number) =>
    `${metricsHost.includes(':') ? `[${metricsHost}]` : metricsHost}:${metricsPort === 0 ? await freePort(metricsHost) : metricsPort + i}`;

  const live = new Map<number, Worker>();
  const ready = new Map<number, ReadyMessage>();
  let stopping = false;
  let failed = false;
  let resolveAllReady!: () => void;
  const allReady = new Promise<void>((resolve) => (resolveAllReady = resolve));
  let resolveStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (resolveStop = resolve));

  const fork = async (i: number) => {
    const worker = cluster.fork({ [INDEX_ENV]: String(i), [METRICS_ENV]: await metricsFor(i) });
    live.set(i, worker);
    worker.on('message', (message: ReadyMessage) => {
      if (message?.type !== READY) return;
      ready.set(i, message);
      if (ready.size === workers) resolveAllReady();
    });
    worker.once('exit', (code, signal) => {
      if (live.get(i) === worker) live.delete(i);
      if (stopping) return;
      if (!ready.has(i)) {
        logger.error({ worker: i, code, signal }, 'worker exited before serving; stopping the cluster');
        failed = true;
        resolveStop();
        return;
      }
      logger.error({ worker: i, code, signal }, 'worker died; starting a new one');
      ready.delete(i);
      void fork(i);
    });
  };

  process.once('SIGTERM', () => resolveStop());
  process.once('SIGINT', () => resolveStop());
  absorbRepeatedSignals();
  for (let i = 0; i < workers; i++) await fork(i);
  await Promise.race([allReady, stopRequested]);
  if (!failed && ready.size === workers) {
    const first = ready.get(0)!;
    logger.info(
      {
        workers,
        port: first.port,
        httpPort: first.httpPort,
        httpPorts: [...ready.entries()].sort(([a], [b]) => a - b).map(([, r]) => r.httpPort),
      },
      'prism proxy cluster serving',
    );
  }
  await stopRequested;
  stopping = true;
  logger.info({ workers: live.size }, 'stopping workers');
  const codes = await Promise.all(
    [...live.values()].map(
      (worker) =>
        new Promise<number | null>((resolve) => {
          if (worker.isDead()) return resolve(worker.process.exitCode);
          const timer = setTimeout(() => worker.process.kill('SIGKILL'), options.drainTimeoutMs + 5_000);
          worker.once('exit', (code) => {
            clearTimeout(timer);
            resolve(code);
          });
          worker.process.kill('SIGTERM');
        }),
    ),
  );
  const ok = !failed && codes.every((c) => c === 0);
  logger.info({ codes }, ok ? 'all workers stopped' : 'workers stopped with errors');
  return ok ? 0 : 1;
}
