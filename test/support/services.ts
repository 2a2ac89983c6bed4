/**
 * Real services for integration tests: where they are, whether they answer, and clients for them.
 *
 * `scripts/test-services.sh up` starts Redis, NATS (JetStream), PostgreSQL, Kafka, OpenBao (a real
 * Vault, dev mode) and SeaweedFS (a real S3-compatible object store) on loopback;
 * `scripts/test-services.sh env` prints the variables read here. A test that needs a service probes
 * it with a real connection attempt: when it does not answer, the test is skipped with a printed
 * reason, unless PRISM_REQUIRE_SERVICES=1 (CI), where a missing service fails the run.
 *
 *   await describeWithService('redis', 'redis cache', (svc) => { it(...) });   // top-level await
 *   await describeWithServices(['postgres', 'vault'], 'leases', () => { it(...) });
 *   it('...', async (ctx) => { await requireService('kafka', ctx); ... });
 *   describeIfPresent('nats-server', { ok: false, reason: '...' }, 'restart', () => { ... });
 *
 * Every skip for something missing goes through `describeIfPresent` or `requireService`, so that
 * PRISM_REQUIRE_SERVICES=1 turns it into a failure.
 */
import { describe, it, type TestContext } from 'vitest';
import { Redis, type RedisOptions } from 'ioredis';
import {
  connect as natsConnect,
  type NodeConnectionOptions as ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { fixKafkajsIdleWakeups } from '../../src/drivers/kafka/request-queue-fix.js';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';

export type ServiceName = 'redis' | 'nats' | 'postgres' | 'kafka' | 'vault' | 's3';

/** The environment variable that locates each service. */
export const SERVICE_ENV: Readonly<Record<ServiceName, string>> = {
  redis: 'PRISM_TEST_REDIS_URL',
  nats: 'PRISM_TEST_NATS_URL',
  postgres: 'PRISM_TEST_POSTGRES_URL',
  kafka: 'PRISM_TEST_KAFKA_BROKERS',
  vault: 'PRISM_TEST_VAULT_ADDR',
  s3: 'PRISM_TEST_S3_ENDPOINT',
};

const DEFAULTS: Readonly<Record<ServiceName, string>> = {
  redis: 'redis://127.0.0.1:6379',
  nats: 'nats://127.0.0.1:4222',
  postgres: 'postgres://prism:prism@127.0.0.1:5432/prism_test',
  kafka: '127.0.0.1:9092',
  vault: 'http://127.0.0.1:8200',
  s3: 'http://127.0.0.1:8333',
};

const PROBE_TIMEOUT_MS = Number(process.env.PRISM_TEST_PROBE_TIMEOUT_MS ?? 3000);

function fromEnv(name: ServiceName): string {
  const value = process.env[SERVICE_ENV[name]];
  return value !== undefined && value.trim() !== '' ? value.trim() : DEFAULTS[name];
}

export function redisUrl(): string {
  return fromEnv('redis');
}
export function natsUrl(): string {
  return fromEnv('nats');
}
export function postgresUrl(): string {
  return fromEnv('postgres');
}
export function kafkaBrokers(): string[] {
  return fromEnv('kafka')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
}

/** The test Vault's address (OpenBao in dev mode). */
export function vaultAddr(): string {
  return fromEnv('vault').replace(/\/+$/, '');
}

/** The test Vault's root token (PRISM_TEST_VAULT_TOKEN, printed by `test-services.sh env`). */
export function vaultRootToken(): string {
  return process.env.PRISM_TEST_VAULT_TOKEN?.trim() ?? '';
}

/** The test S3-compatible server (SeaweedFS): endpoint, region and its one identity's keys. */
export function s3Config(): {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
} {
  return {
    endpoint: fromEnv('s3').replace(/\/+$/, ''),
    region: process.env.PRISM_TEST_S3_REGION?.trim() || 'us-east-1',
    accessKeyId: process.env.PRISM_TEST_S3_ACCESS_KEY?.trim() ?? '',
    secretAccessKey: process.env.PRISM_TEST_S3_SECRET_KEY?.trim() ?? '',
  };
}

/** An S3 client for the test server (path-style addressing). The caller destroys it. */
export function s3Client(): S3Client {
  const config = s3Config();
  return new S3Client({
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: true,
    credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    maxAttempts: 1,
  });
}

/** True when a missing service must fail the tests instead of skipping them (CI). */
export function servicesRequired(): boolean {
  return process.env.PRISM_REQUIRE_SERVICES === '1';
}

/** Where a service is expected, for messages; the Postgres password is not repeated. */
export function serviceTarget(name: ServiceName): string {
  if (name === 'kafka') return kafkaBrokers().join(',');
  const raw = fromEnv(name);
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return raw;
  }
}

/** A short unique suffix for names (topics, streams, tables) so runs do not collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

// ---------------------------------------------------------------------------------------------
// Connection factories
// ---------------------------------------------------------------------------------------------

/** An ioredis client for the test Redis. The caller quits it. */
export function connectRedis(options: RedisOptions = {}): Redis {
  return new Redis(redisUrl(), { connectTimeout: PROBE_TIMEOUT_MS, ...options });
}

/** A NATS connection to the test server (JetStream enabled). The caller closes or drains it. */
export function connectNats(options: ConnectionOptions = {}): Promise<NatsConnection> {
  return natsConnect({ servers: natsUrl(), timeout: PROBE_TIMEOUT_MS, ...options });
}

/** A connected pg client for the test database. The caller ends it. */
export async function connectPostgres(config: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: postgresUrl(),
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    ...config,
  });
  await client.connect();
  return client;
}

/** A kafkajs client for the test broker (quiet logger unless overridden). */
export function kafkaClient(config: Partial<KafkaConfig> = {}): Kafka {
  fixKafkajsIdleWakeups();
  return new Kafka({
    clientId: 'prism-test',
    brokers: kafkaBrokers(),
    logLevel: logLevel.NOTHING,
    connectionTimeout: PROBE_TIMEOUT_MS,
    ...config,
  });
}

// ---------------------------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------------------------

export type ProbeResult = { ok: true } | { ok: false; reason: string };

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map(describeError).join('; ');
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

const probes: Record<ServiceName, () => Promise<void>> = {
  async redis() {
    const client = connectRedis({
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    // ioredis rejects connect() with a bare "Connection is closed."; the cause comes as an event.
    let cause: unknown;
    client.on('error', (err: unknown) => {
      cause ??= err;
    });
    try {
      await client.connect().catch((err: unknown) => {
        throw cause ?? err;
      });
      const pong = await client.ping();
      if (pong !== 'PONG') throw new Error(`PING answered ${pong}`);
    } finally {
      client.disconnect();
    }
  },
  async nats() {
    const nc = await connectNats({ reconnect: false, maxReconnectAttempts: 0 });
    try {
      const jsm = await jetstreamManager(nc, { timeout: PROBE_TIMEOUT_MS });
      await jsm.getAccountInfo(); // fails when JetStream is not enabled
    } finally {
      await nc.close();
    }
  },
  async postgres() {
    const client = await connectPostgres();
    try {
      await client.query('select 1');
    } finally {
      await client.end();
    }
  },
  async vault() {
    const token = vaultRootToken();
    if (token === '') throw new Error('PRISM_TEST_VAULT_TOKEN is not set');
    const res = await fetch(`${vaultAddr()}/v1/auth/token/lookup-self`, {
      headers: { 'x-vault-token': token },
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`the root token was refused (HTTP ${res.status})`);
  },
  async s3() {
    if (s3Config().accessKeyId === '') throw new Error('PRISM_TEST_S3_ACCESS_KEY is not set');
    const client = s3Client();
    try {
      await client.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    } finally {
      client.destroy();
    }
  },
  async kafka() {
    const admin = kafkaClient({ retry: { retries: 0 }, requestTimeout: PROBE_TIMEOUT_MS }).admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length === 0) throw new Error('no broker in cluster metadata');
    } finally {
      await admin.disconnect();
    }
  },
};

const probeCache = new Map<ServiceName, Promise<ProbeResult>>();

/** Try a real connection to the service (once per test file process; cached). */
export function probeService(name: ServiceName): Promise<ProbeResult> {
  let result = probeCache.get(name);
  if (!result) {
    result = withTimeout(probes[name](), PROBE_TIMEOUT_MS * 2, `${name} probe`).then(
      (): ProbeResult => ({ ok: true }),
      (err: unknown): ProbeResult => ({ ok: false, reason: describeError(err) }),
    );
    probeCache.set(name, result);
  }
  return result;
}

function absentMessage(name: ServiceName, reason: string): string {
  return (
    `${name} is not reachable at ${serviceTarget(name)} (${reason}); ` +
    `set ${SERVICE_ENV[name]} or run 'bash scripts/test-services.sh up'`
  );
}

/**
 * Inside a test: resolves when the service answers. When it does not, throws under
 * PRISM_REQUIRE_SERVICES=1, otherwise prints why and skips the test through `ctx.skip()`.
 */
export async function requireService(name: ServiceName, ctx: TestContext): Promise<void> {
  const probe = await probeService(name);
  if (probe.ok) return;
  const message = absentMessage(name, probe.reason);
  if (servicesRequired()) {
    throw new Error(`${message} [PRISM_REQUIRE_SERVICES=1: a missing service is a failure]`);
  }
  console.warn(`[skip] ${ctx.task.name}: ${message}`);
  ctx.skip(message);
}

export interface ServiceInfo {
  name: ServiceName;
  /** The env var that locates it and its current value (or default). */
  env: string;
  target: string;
}

/**
 * Declares a suite that needs something to be there — a service, a binary, the Docker engine —
 * given whether it is (`presence`, with the reason when it is not). The one place where a suite is
 * skipped for something missing: it runs the suite when present; otherwise it prints the reason and
 * skips the suite (`describe.skipIf`), or, under PRISM_REQUIRE_SERVICES=1, replaces it with a
 * failing test named `needs <what>`.
 */
export function describeIfPresent(what: string, presence: ProbeResult, title: string, fn: () => void): void {
  if (presence.ok) {
    describe(title, fn);
    return;
  }
  if (servicesRequired()) {
    describe(title, () => {
      it(`needs ${what}`, () => {
        throw new Error(`${presence.reason} [PRISM_REQUIRE_SERVICES=1: a missing service is a failure]`);
      });
    });
    return;
  }
  console.warn(`[skip] ${title}: ${presence.reason}`);
  describe.skipIf(true)(`${title} (skipped: ${what} unavailable)`, fn);
}

/**
 * Declares a suite that needs a service. Use with top-level await in the test file. The service is
 * probed before the suite is declared; `describeIfPresent` runs, skips or fails it.
 */
export async function describeWithService(
  name: ServiceName,
  title: string,
  fn: (svc: ServiceInfo) => void,
): Promise<void> {
  const probe = await probeService(name);
  const info: ServiceInfo = { name, env: SERVICE_ENV[name], target: serviceTarget(name) };
  const presence: ProbeResult = probe.ok ? probe : { ok: false, reason: absentMessage(name, probe.reason) };
  describeIfPresent(name, presence, title, () => fn(info));
}

/** Like describeWithService for a suite that needs several services; names every one that is missing. */
export async function describeWithServices(
  names: readonly ServiceName[],
  title: string,
  fn: () => void,
): Promise<void> {
  const probes = await Promise.all(names.map(async (name) => ({ name, probe: await probeService(name) })));
  const absent = probes.flatMap(({ name, probe }) => (probe.ok ? [] : [{ name, reason: probe.reason }]));
  const presence: ProbeResult =
    absent.length === 0
      ? { ok: true }
      : { ok: false, reason: absent.map((a) => absentMessage(a.name, a.reason)).join('; ') };
  describeIfPresent(absent.map((a) => a.name).join(' and '), presence, title, fn);
}
