/**
 * Readiness probes for the Docker stack's components: each asks the server itself (Redis PING,
 * PostgreSQL SELECT 1, NATS /healthz, Kafka metadata, an HTTP 200), never just an open port.
 * A probe resolves to { healthy, detail } and never throws.
 */
import { connect } from 'node:net';
import { probeHttp, type Probe } from './health.js';
import type { ProbeSpec } from './catalog.js';

export interface ProbeTarget {
  spec: ProbeSpec;
  host: string;
  port: number;
  /** For postgres: who to connect as. */
  user?: string;
  password?: string;
}

/** RESP `PING` over a plain socket: healthy on `+PONG`. */
export function probeRedis(host: string, port: number, timeoutMs = 1000): Promise<Probe> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const done = (probe: Probe) => {
      socket.destroy();
      resolve(probe);
    };
    socket.setTimeout(timeoutMs, () => done({ healthy: false, detail: `no answer within ${timeoutMs} ms` }));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (!reply.includes('\r\n')) return;
      const line = reply.split('\r\n')[0]!;
      done(
        line === '+PONG' ? { healthy: true, detail: 'PONG' } : { healthy: false, detail: line.slice(0, 200) },
      );
    });
    socket.on('error', (err) => done({ healthy: false, detail: err.message }));
  });
}

/** `SELECT 1` on the postgres database. */
export async function probePostgres(
  host: string,
  port: number,
  user: string,
  password: string | undefined,
  timeoutMs = 2000,
): Promise<Probe> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    host,
    port,
    user,
    ...(password !== undefined ? { password } : {}),
    database: 'postgres',
    connectionTimeoutMillis: timeoutMs,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { healthy: true, detail: 'SELECT 1' };
  } catch (err) {
    return { healthy: false, detail: (err as Error).message };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Kafka answers a metadata request (describeCluster) with at least one broker. */
export async function probeKafka(host: string, port: number, timeoutMs = 3000): Promise<Probe> {
  const { Kafka, logLevel } = await import('kafkajs');
  const admin = new Kafka({
    clientId: 'prismctl-dev-probe',
    brokers: [`${host}:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0
      ? { healthy: true, detail: `${cluster.brokers.length} broker(s), controller ${cluster.controller}` }
      : { healthy: false, detail: 'no brokers in the metadata' };
  } catch (err) {
    return { healthy: false, detail: (err as Error).message };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** One probe of a component, chosen by its catalog entry. */
export function probeOnce(target: ProbeTarget): Promise<Probe> {
  const { spec, host, port } = target;
  switch (spec.type) {
    case 'redis':
      return probeRedis(host, port);
    case 'postgres':
      return probePostgres(host, port, target.user ?? 'postgres', target.password);
    case 'nats':
      return probeHttp(`http://${host}:${port}/healthz`);
    case 'kafka':
      return probeKafka(host, port);
    case 'http':
      return probeHttp(`http://${host}:${port}${spec.path ?? '/'}`);
  }
}

/**
 * Probes until healthy or the deadline; returns the last probe. `stop` ends the wait early (a
 * container that exited will never become healthy).
 */
export function waitHealthy(
  target: ProbeTarget,
  deadline: number,
  stop: () => Promise<string | undefined> = async () => undefined,
  intervalMs = 200,
): Promise<Probe> {
  return waitUntil(() => probeOnce(target), deadline, stop, intervalMs);
}

/** Runs `probe` until it is healthy, `stop` gives a reason, or the deadline passes. */
export async function waitUntil(
  probe: () => Promise<Probe>,
  deadline: number,
  stop: () => Promise<string | undefined> = async () => undefined,
  intervalMs = 200,
): Promise<Probe> {
  let last: Probe = { healthy: false, detail: 'not probed yet' };
  while (Date.now() < deadline) {
    last = await probe();
    if (last.healthy) return last;
    const why = await stop();
    if (why) return { healthy: false, detail: why };
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
  return { healthy: false, detail: `not healthy within the wait timeout; last probe: ${last.detail}` };
}
