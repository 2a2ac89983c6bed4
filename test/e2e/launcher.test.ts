/**
 * Isolation through the real proxy: a namespace with `isolation: pattern` is served by runner
 * processes the proxy launched (keyvalue on Redis, producer and consumer on NATS), a runner killed
 * with SIGKILL answers UNAVAILABLE until the launcher restarted it while another namespace of the
 * same proxy keeps serving, the memory cap reaches the child's V8, `runner list --json` reports
 * the processes, and the proxy's shutdown (or its death) ends them.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { credentials, makeGenericClientConstructor, Metadata } from '@grpc/grpc-js';
import { DataClient } from '../../src/client/data-client.js';
import { unaryCall, type AnyClient } from '../../src/client/proxy-call.js';
import { BatchSetRequestSchema, KeyValue } from '../../src/gen/prism/data/v1/keyvalue_pb.js';
import { fromServiceError } from '../../src/transport/grpc-status.js';
import { NAMESPACE_HEADER } from '../../src/transport/metadata.js';
import { grpcServiceDefinition } from '../../src/transport/service-definition.js';
import type { PrismError } from '../../src/errors.js';
import type { RunnerProcessInfo } from '../../src/proxy/launcher/runner-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { DEFAULT_V8_FLAGS } from '../../src/proxy/v8-flags.js';
import { describeWithServices, natsUrl, redisUrl, uniqueName } from '../support/services.js';
import { consumeReader, sleep, waitFor } from './support-streams.js';

const dir = mkdtempSync(join(tmpdir(), 'prism-launcher-'));
const isolated = uniqueName('iso');
const plain = uniqueName('plain');
const shared = uniqueName('shared');
const hog = uniqueName('hog');
const topic = uniqueName('launched').replace(/[^a-z0-9.-]/g, '');
const CAP_MB = 96;

let proxy: RunningServer | undefined;
let endpoint: string;
let status: string;
const clients: DataClient[] = [];
const client = (namespace: string) => {
  const c = new DataClient(endpoint, { namespace, timeoutMs: 10_000 });
  clients.push(c);
  return c;
};

async function runnerList(): Promise<RunnerProcessInfo[]> {
  const out = await runCli(['runner', 'list', '--proxy-status', status, '--json']);
  expect(out.code).toBe(0);
  return (JSON.parse(out.stdout) as { runners: RunnerProcessInfo[] }).runners;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

await describeWithServices(['redis', 'nats'], 'runner processes launched by the proxy', () => {
  beforeAll(async () => {
    await ensureBuilt();
    mkdirSync(join(dir, 'ns'));
    writeFileSync(
      join(dir, 'backends.yaml'),
      `backends:\n  memstore: [{ name: test, endpoint: "memory://" }]\n  redis: [{ name: test, endpoint: "${redisUrl()}" }]\n  nats: [{ name: test, endpoint: "${natsUrl()}" }]\n`,
    );
    writeFileSync(
      join(dir, 'ns', 'isolated.yaml'),
      [
        `namespace: ${isolated}`,
        'team: platform',
        'isolation: pattern',
        'patterns:',
        '  - { name: cache, type: keyvalue, slots: { store: { backend: redis } } }',
        `  - { name: events, type: producer, slots: { sink: { backend: nats } }, settings: { topic: ${topic} } }`,
        `  - { name: billing, type: consumer, slots: { source: { backend: nats } }, settings: { topic: ${topic}, consumer_group: billing } }`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'ns', 'plain.yaml'),
      `namespace: ${plain}\nteam: platform\npatterns:\n  - { name: cache, type: keyvalue, slots: { store: { backend: redis } } }\n`,
    );
    writeFileSync(
      join(dir, 'ns', 'shared.yaml'),
      [
        `namespace: ${shared}`,
        'team: platform',
        'isolation: namespace',
        'patterns:',
        '  - { name: hot, type: keyvalue, slots: { store: { backend: redis } } }',
        '  - { name: cold, type: keyvalue, slots: { store: { backend: redis } }, settings: { default_ttl: 1h } }',
        '  - { name: local, type: keyvalue, isolation: none, slots: { store: { backend: memstore } } }',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'ns', 'hog.yaml'),
      `namespace: ${hog}\nteam: platform\nisolation: pattern\npatterns:\n  - { name: cache, type: keyvalue, slots: { store: { backend: memstore } } }\n`,
    );
    proxy = await startProxy({ namespaces: join(dir, 'ns'), backends: join(dir, 'backends.yaml') }, [
      '--runner-max-old-space',
      String(CAP_MB),
    ]);
    endpoint = `127.0.0.1:${proxy.ready.port as number}`;
    status = `127.0.0.1:${proxy.ready.httpPort as number}`;
  });

  afterAll(async () => {
    clients.forEach((c) => c.close());
    if (proxy) await proxy.stop('SIGKILL');
  });

  it('launches one process per pattern and lists them with pid, state, restarts and memory', async () => {
    const runners = await runnerList();
    expect(runners.map((r) => [r.namespace, r.patterns, r.isolation, r.state, r.restarts])).toEqual([
      [hog, ['cache'], 'pattern', 'serving', 0],
      [isolated, ['billing'], 'pattern', 'serving', 0],
      [isolated, ['cache'], 'pattern', 'serving', 0],
      [isolated, ['events'], 'pattern', 'serving', 0],
      [shared, ['hot', 'cold'], 'namespace', 'serving', 0],
    ]);
    for (const r of runners) {
      expect(alive(r.pid!)).toBe(true);
      expect(r.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
      expect(r.maxOldSpaceMb).toBe(CAP_MB);
    }
    const metrics = await (await fetch(`http://${status}/metrics`)).text();
    expect(metrics).toContain(
      `prism_runner_process_up{namespace="${isolated}",patterns="cache",isolation="pattern"} 1`,
    );
  });

  it('serves the patterns of an isolation: namespace process by x-prism-pattern, and isolation: none in the proxy', async () => {
    const hot = new DataClient(endpoint, { namespace: shared, pattern: 'hot', timeoutMs: 10_000 });
    const cold = new DataClient(endpoint, { namespace: shared, pattern: 'cold', timeoutMs: 10_000 });
    const local = new DataClient(endpoint, { namespace: shared, pattern: 'local', timeoutMs: 10_000 });
    clients.push(hot, cold, local);
    await hot.set('h', Buffer.from('1'));
    await cold.set('c', Buffer.from('2'));
    await local.set('l', Buffer.from('3'));
    // cold's default_ttl applies in the launched process; hot has none (-1: no expiry).
    expect([Number((await hot.ttl('h')).ttlMs), Number((await cold.ttl('c')).ttlMs) > 3_500_000]).toEqual([
      -1,
      true,
    ]);
    expect(Buffer.from((await local.get('l')).value).toString()).toBe('3');
    const sharedProcesses = (await runnerList()).filter((r) => r.namespace === shared);
    expect(sharedProcesses).toHaveLength(1);
  });

  it('passes the memory cap and the proxy V8 options to each runner process, whose V8 heap limit follows the cap', async () => {
    for (const r of await runnerList()) {
      const argv = readFileSync(`/proc/${r.pid}/cmdline`, 'utf8').split('\0');
      expect(argv).toContain(`--max-old-space-size=${CAP_MB}`);
      // The proxy's own V8 options (proxy serve --v8-flags, default DEFAULT_V8_FLAGS) too.
      for (const flag of DEFAULT_V8_FLAGS.split(' ')) expect(argv).toContain(flag);
      // V8's default limit here is several GiB; capped, it is the old-space cap plus the young
      // generation (192 MiB on this machine).
      expect(r.heapLimitBytes).toBeGreaterThan(CAP_MB * 1024 * 1024);
      expect(r.heapLimitBytes).toBeLessThan((CAP_MB + 256) * 1024 * 1024);
    }
  });

  it('serves keyvalue through the launched runner with the statuses of an in-process one', async () => {
    const kv = client(isolated);
    await kv.set('greeting', Buffer.from('hello'), 60);
    const got = await kv.get('greeting');
    expect([got.found, Buffer.from(got.value).toString()]).toEqual([true, 'hello']);
    expect((await kv.exists('missing')).exists).toBe(false);
    const ttl = Number((await kv.ttl('greeting')).ttlMs);
    expect(ttl).toBeGreaterThan(50_000);
    const bad = await kv.set('', Buffer.from('x')).then(
      () => 'ok',
      (err: PrismError) => err.code,
    );
    expect(bad).toBe('E_INVALID_ARGUMENT');
  });

  it('publishes (unary and PublishStream) and consumes through launched producer and consumer runners', async () => {
    const c = client(isolated);
    const consumer = c.consume({ topic, group: 'billing', maxInFlight: 16 });
    const reader = consumeReader(consumer);
    await sleep(500);
    await c.publish({ topic, payload: Buffer.from('one'), correlationId: 'c-1' });
    const writer = c.publishStream();
    await Promise.all([
      writer.publish({ topic, payload: Buffer.from('two') }),
      writer.publish({ topic, payload: Buffer.from('three') }),
    ]);
    await writer.end();
    await waitFor('three deliveries', () => reader.received.length >= 3, 20_000);
    expect(reader.failure).toBeUndefined();
    expect(reader.received.map((d) => Buffer.from(d.message!.payload).toString())).toEqual([
      'one',
      'two',
      'three',
    ]);
    expect(reader.received[0]!.message!.correlationId).toBe('c-1');
    expect(reader.received[0]!.message!.namespace).toBe(isolated);
    c.ack(
      consumer,
      reader.received.map((d) => d.deliveryId),
    );
    consumer.end();
  });

  it('answers UNAVAILABLE while a killed runner restarts, serves again after, and never disturbs another namespace', async () => {
    const [before] = (await runnerList()).filter(
      (r) => r.namespace === isolated && r.patterns[0] === 'cache',
    );
    const kv = client(isolated);
    const other = client(plain);
    const otherFailures: string[] = [];
    let otherCalls = 0;
    let running = true;
    const steady = (async () => {
      for (let i = 0; running; i++) {
        try {
          await other.set(`k${i % 20}`, Buffer.from(String(i)));
          otherCalls++;
        } catch (err) {
          otherFailures.push((err as PrismError).code);
        }
        await sleep(5);
      }
    })();

    process.kill(before!.pid!, 'SIGKILL');
    const codes: string[] = [];
    const slowest: number[] = [];
    const deadline = Date.now() + 30_000;
    let recovered = false;
    while (!recovered && Date.now() < deadline) {
      const started = Date.now();
      await kv.get('greeting').then(
        (res) => (recovered = res.found),
        (err: PrismError) => codes.push(err.code),
      );
      slowest.push(Date.now() - started);
      await sleep(20);
    }
    running = false;
    await steady;

    expect(recovered).toBe(true);
    expect(codes.length).toBeGreaterThan(0);
    expect([...new Set(codes)]).toEqual(['E_UNAVAILABLE']);
    // Never a hang: each call in the gap is answered at once.
    expect(Math.max(...slowest)).toBeLessThan(2000);
    expect(otherFailures).toEqual([]);
    expect(otherCalls).toBeGreaterThan(10);
    const [after] = (await runnerList()).filter((r) => r.namespace === isolated && r.patterns[0] === 'cache');
    expect([after!.state, after!.restarts, after!.pid !== before!.pid]).toEqual(['serving', 1, true]);
  });

  it('keeps a Consume stream open while its consumer runner restarts, and delivers what is published after', async () => {
    const c = client(isolated);
    const consumer = c.consume({ topic, group: 'billing', maxInFlight: 16 });
    const reader = consumeReader(consumer);
    await sleep(500);
    const billing = async () =>
      (await runnerList()).find((r) => r.namespace === isolated && r.patterns[0] === 'billing')!;
    const before = await billing();
    process.kill(before.pid!, 'SIGKILL');
    let after = before;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !(after.state === 'serving' && after.pid !== before.pid)) {
      await sleep(100);
      after = await billing();
    }
    expect([after.state, after.restarts]).toEqual(['serving', before.restarts + 1]);
    await c.publish({ topic, payload: Buffer.from('after-restart') });
    await waitFor(
      'the delivery after the restart',
      () => reader.received.some((d) => Buffer.from(d.message!.payload).toString() === 'after-restart'),
      20_000,
    );
    expect(reader.failure).toBeUndefined();
    c.ack(
      consumer,
      reader.received.map((d) => d.deliveryId),
    );
    consumer.end();
  });

  it('restarts a runner that outgrows its memory cap, and reports the restart', async () => {
    const [before] = (await runnerList()).filter((r) => r.namespace === hog);
    const KeyValueClient = makeGenericClientConstructor(grpcServiceDefinition(KeyValue), 'KeyValue');
    const raw = new KeyValueClient(endpoint, credentials.createInsecure()) as never as AnyClient;
    const metadata = new Metadata();
    metadata.set(NAMESPACE_HEADER, hog);
    // Keys live on the runner's V8 heap (memstore): about 3 MB of them per call, until it dies.
    const codes: string[] = [];
    try {
      for (let call = 0; call < 200 && codes.length === 0; call++) {
        const items = Array.from({ length: 3000 }, (_, i) => ({
          key: `${call}-${i}-`.padEnd(1000, 'x'),
          value: new Uint8Array(),
        }));
        await unaryCall(
          raw,
          'batchSet',
          BatchSetRequestSchema,
          { items },
          {
            metadata,
            timeoutMs: 30_000,
            toError: (err) => fromServiceError(err, endpoint),
          },
        ).catch((err: PrismError) => codes.push(err.code));
      }
    } finally {
      raw.close();
    }
    expect(codes).toEqual(['E_UNAVAILABLE']);
    let after: RunnerProcessInfo | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      [after] = (await runnerList()).filter((r) => r.namespace === hog);
      if (after?.state === 'serving') break;
      await sleep(100);
    }
    expect([after!.state, after!.restarts, after!.pid !== before!.pid]).toEqual(['serving', 1, true]);
    // V8's fatal out-of-memory error; its first words ("Reached heap limit", "Ineffective
    // mark-compacts near heap limit") depend on which check of its collector fired.
    expect(proxy!.logs()).toContain('Allocation failed - JavaScript heap out of memory');
  });

  it('stops every runner process when the proxy shuts down', async () => {
    const pids = (await runnerList()).map((r) => r.pid!);
    expect(pids).toHaveLength(5);
    expect(await proxy!.stop('SIGTERM')).toBe(0);
    proxy = undefined;
    expect(pids.filter(alive)).toEqual([]);
  });

  it('runner processes exit by themselves when their proxy is killed with SIGKILL', async () => {
    const killed = await startProxy({
      namespaces: join(dir, 'ns', 'isolated.yaml'),
      backends: join(dir, 'backends.yaml'),
    });
    try {
      status = `127.0.0.1:${killed.ready.httpPort as number}`;
      const pids = (await runnerList()).map((r) => r.pid!);
      expect(pids).toHaveLength(3);
      await killed.stop('SIGKILL');
      await waitFor('runner processes to exit', () => pids.every((pid) => !alive(pid)), 10_000);
    } finally {
      await killed.stop('SIGKILL');
    }
  });
});
