/**
 * Private NATS (JetStream), PostgreSQL and Kafka (KRaft) servers (and all four messaging backends
 * with Redis, privateMessagingBackends) started by a test on free loopback ports, for
 * tests that kill and restart a backend without touching the shared test services (the same idea
 * as private-redis.ts). Data survives a restart: JetStream keeps its store directory, PostgreSQL
 * its data directory (an immediate stop is a crash, recovered at the next start), Kafka its log
 * directory (a SIGKILL is recovered at the next start).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { startRedis, stopRedis } from './private-redis.js';
import type { ProbeResult } from './services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000, () => socket.destroy());
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitUntil(what: string, ok: () => Promise<boolean>, output: () => string): Promise<void> {
  const started = Date.now();
  while (!(await ok())) {
    if (Date.now() - started > 20_000) throw new Error(`${what} did not start in 20 s:\n${output()}`);
    await sleep(50);
  }
}

export interface PrivateServer {
  readonly endpoint: string;
  /** Kills the server at once (no clean shutdown). */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

// --- NATS -----------------------------------------------------------------------------------

export function natsServerPresence(): ProbeResult {
  const result = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  return result.status === 0
    ? { ok: true }
    : {
        ok: false,
        reason: 'nats-server is not installed (needed to start a private NATS); install nats-server',
      };
}

export async function privateNats(): Promise<PrivateServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'prism-private-nats-'));
  let child: ChildProcess | undefined;
  let output = '';
  const server: PrivateServer = {
    endpoint: `nats://127.0.0.1:${port}`,
    async start() {
      output = '';
      child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      await waitUntil(
        'nats-server',
        async () => /Server is ready/.test(output) && listening(port),
        () => output,
      );
    },
    kill: () => stopChild(child, 'SIGKILL'),
  };
  await server.start();
  return server;
}

// --- PostgreSQL ---------------------------------------------------------------------------------

function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  return undefined;
}

/** postgres refuses to run as root: as root, run it as the postgres system user (uid and gid). */
function runAs(): { uid: number; gid: number } | Record<string, never> {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) =>
    Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

export function postgresServerPresence(): ProbeResult {
  if (!postgresBin())
    return { ok: false, reason: 'PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin)' };
  if (process.getuid?.() === 0 && spawnSync('id', ['postgres']).status !== 0)
    return { ok: false, reason: 'running as root without a postgres system user to run PostgreSQL as' };
  return { ok: true };
}

export async function privatePostgres(): Promise<PrivateServer & { stop(): Promise<void> }> {
  const bin = postgresBin()!;
  const port = await freePort();
  // Below /var/tmp: the postgres user may not enter the test's temporary directory's parents.
  const base = mkdtempSync(join('/var/tmp', 'prism-private-pg-'));
  chmodSync(base, 0o777);
  const data = join(base, 'data');
  const user = runAs();
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--auth=trust', '-N'],
    { encoding: 'utf8', ...user },
  );
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.stdout}${init.stderr}`);
  let child: ChildProcess | undefined;
  let output = '';
  const server = {
    endpoint: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      output = '';
      const args = [
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        base,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
      ];
      child = spawn(join(bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], ...user });
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      await waitUntil(
        'postgres',
        async () => /ready to accept connections/.test(output) && listening(port),
        () => output,
      );
    },
    // SIGQUIT is PostgreSQL's immediate shutdown: every backend exits at once, no checkpoint.
    kill: () => stopChild(child, 'SIGQUIT'),
    stop: () => stopChild(child, 'SIGINT'),
  };
  await server.start();
  return server;
}

// --- Kafka ----------------------------------------------------------------------------------------

/** The Kafka jars scripts/test-services.sh resolved into the cache (KRaft, broker and controller). */
function kafkaLibs(): string | undefined {
  const cache = process.env.PRISM_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'prism');
  const version = process.env.PRISM_KAFKA_VERSION ?? '4.1.1';
  const libs = join(cache, 'kafka', `2.13-${version}`, 'libs');
  return existsSync(libs) ? libs : undefined;
}

export function kafkaServerPresence(): ProbeResult {
  if (spawnSync('java', ['-version']).status !== 0)
    return { ok: false, reason: 'java is not installed (needed to start a private Kafka)' };
  if (!kafkaLibs())
    return {
      ok: false,
      reason: 'the Kafka jars are not in the cache; run scripts/test-services.sh kafka once to fetch them',
    };
  return { ok: true };
}

/** A private single-node KRaft Kafka (broker and controller in one JVM). */
export async function privateKafka(): Promise<PrivateServer & { stop(): Promise<void> }> {
  const libs = kafkaLibs()!;
  const [port, controller] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'prism-private-kafka-'));
  const properties = join(dir, 'server.properties');
  writeFileSync(
    properties,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controller}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=1',
      'default.replication.factor=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'num.network.threads=2',
      'num.io.threads=2',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'log4j2.properties'),
    [
      'status = warn',
      'appender.stdout.type = Console',
      'appender.stdout.name = STDOUT',
      'appender.stdout.layout.type = PatternLayout',
      'appender.stdout.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = info',
      'rootLogger.appenderRef.stdout.ref = STDOUT',
      '',
    ].join('\n'),
  );
  const jvm = [
    '-Xms128m',
    '-Xmx512m',
    `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
    `-Dkafka.logs.dir=${dir}`,
    '-cp',
    `${libs}/*`,
  ];
  // Never starting with '-', which the storage tool's argument parser would read as an option.
  let clusterId = '-';
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
  const format = spawnSync(
    'java',
    [
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      ...jvm,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      properties,
    ],
    { encoding: 'utf8' },
  );
  if (format.status !== 0) throw new Error(`kafka storage format failed:\n${format.stdout}${format.stderr}`);
  let child: ChildProcess | undefined;
  let output = '';
  const server = {
    endpoint: `kafka://127.0.0.1:${port}`,
    async start() {
      output = '';
      child = spawn('java', ['-XX:+UseG1GC', '-Djava.awt.headless=true', ...jvm, 'kafka.Kafka', properties], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      const started = Date.now();
      while (!(/Kafka Server started/.test(output) && (await listening(port)))) {
        if (child.exitCode !== null)
          throw new Error(`kafka exited (${child.exitCode}):\n${output.slice(-4000)}`);
        if (Date.now() - started > 90_000)
          throw new Error(`kafka did not start in 90 s:\n${output.slice(-4000)}`);
        await sleep(100);
      }
    },
    kill: () => stopChild(child, 'SIGKILL'),
    stop: () => stopChild(child, 'SIGTERM'),
  };
  await server.start();
  return server;
}

// --- All four messaging backends ----------------------------------------------------------------

export const MESSAGING_BACKENDS = ['redis', 'nats', 'postgres', 'kafka'] as const;
export type MessagingBackend = (typeof MESSAGING_BACKENDS)[number];

/** Whether a test can start every private messaging server (Redis is checked by its own helper). */
export function messagingServersPresence(): ProbeResult {
  return (
    [natsServerPresence(), postgresServerPresence(), kafkaServerPresence()].find((p) => !p.ok) ?? { ok: true }
  );
}

export interface PrivateMessagingBackends {
  readonly servers: Record<MessagingBackend, PrivateServer>;
  /** A proxy backends file naming every server as the instance `private`. */
  readonly backendsFile: string;
  /** Stops every server that is still running. */
  stop(): Promise<void>;
}

/**
 * A private Redis, NATS, PostgreSQL and Kafka, each killable and restartable, and the backends
 * file a proxy needs to use them. PostgreSQL's user is left out of the endpoint, so a namespace
 * passes it as credentials. Whatever started is stopped again when a later server fails to start.
 */
export async function privateMessagingBackends(dir: string): Promise<PrivateMessagingBackends> {
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s();
  };
  try {
    const redisDir = join(dir, 'redis');
    mkdirSync(redisDir, { recursive: true });
    const redisPort = await freePort();
    let redis: ChildProcess | undefined = await startRedis(redisPort, redisDir);
    stops.push(async () => {
      if (redis) await stopRedis(redis, 'SIGTERM');
    });
    const redisServer: PrivateServer = {
      endpoint: `redis://127.0.0.1:${redisPort}`,
      kill: async () => {
        if (redis) await stopRedis(redis, 'SIGKILL');
        redis = undefined;
      },
      start: async () => {
        redis = await startRedis(redisPort, redisDir);
      },
    };
    const nats = await privateNats();
    stops.push(() => nats.kill());
    const postgres = await privatePostgres();
    stops.push(() => postgres.stop());
    const kafka = await privateKafka();
    stops.push(() => kafka.stop());
    const servers = { redis: redisServer, nats, postgres, kafka };
    const pgUrl = new URL(postgres.endpoint);
    pgUrl.username = '';
    const backendsFile = join(dir, 'backends.yaml');
    writeFileSync(
      backendsFile,
      [
        'backends:',
        `  redis: [{ name: private, endpoint: "${redisServer.endpoint}" }]`,
        `  nats: [{ name: private, endpoint: "${nats.endpoint}" }]`,
        `  postgres: [{ name: private, endpoint: "${pgUrl.toString()}" }]`,
        `  kafka: [{ name: private, endpoint: "${kafka.endpoint}" }]`,
        '',
      ].join('\n'),
    );
    return { servers, backendsFile, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
