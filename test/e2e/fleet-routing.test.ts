/**
 * Clients reach the owner (docs/fleet.md, Routing): two real proxies following one admin; every
 * namespace is served through either proxy — by the TypeScript client, the CLI, the Python example
 * and streams — the
 * proxy that does not own a namespace forwarding the call to the one that does. A namespace that
 * does not exist is NOT_FOUND, a call another proxy already forwarded is never forwarded again
 * (UNAVAILABLE), and a proxy that drains hands its namespaces over without a failed call.
 */
import { create } from '@bufbuild/protobuf';
import { credentials, makeGenericClientConstructor, Metadata } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { GetRequestSchema, KeyValue } from '../../src/gen/prism/data/v1/keyvalue_pb.js';
import type { ConsumeResponse, SubscribeResponse } from '../../src/gen/prism/data/v1/messaging_pb.js';
import { grpcServiceDefinition } from '../../src/transport/service-definition.js';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { ensureBuilt, REPO_ROOT, runCli } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

const HEARTBEAT_MS = 200;
const COUNT = 8;

function namespaceYaml(name: string): string {
  return [
    `namespace: ${name}`,
    'team: platform',
    'patterns:',
    '  - name: cache',
    '    type: keyvalue',
    '    slots: { store: { backend: memstore } }',
    '  - name: events',
    '    type: producer',
    '    slots: { sink: { backend: memstore } }',
    '    settings: { topic: greetings }',
    '  - name: worker',
    '    type: consumer',
    '    slots: { source: { backend: memstore } }',
    '    settings: { topic: greetings, consumer_group: fleet }',
    '',
  ].join('\n');
}

describe('a fleet of two proxies: any proxy serves any namespace', () => {
  const prefix = uniqueName('route');
  const names = Array.from({ length: COUNT }, (_, i) => `${prefix}-${i}`);
  const proxies: Record<string, RunningServer> = {};
  const endpoints: Record<string, string> = {};
  const owners = new Map<string, string>();
  let admin: RunningAdmin;

  const startFleetProxy = async (id: string) => {
    proxies[id] = await startPrismServer(
      [
        ...['proxy', 'serve', '--admin', admin.endpoint, '--proxy-id', id],
        ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
      ],
      'prism proxy serving',
    );
    endpoints[id] = `127.0.0.1:${proxies[id].ready.port as number}`;
  };
  /** The proxy that does not own `name`. */
  const other = (name: string) => (owners.get(name) === 'route-a' ? 'route-b' : 'route-a');
  const client = (id: string, namespace: string, pattern?: string) =>
    new DataClient(endpoints[id]!, { namespace, ...(pattern ? { pattern } : {}), timeoutMs: 5000 });

  beforeAll(async () => {
    await ensureBuilt();
    admin = await startAdmin({ extraArgs: ['--heartbeat-interval', String(HEARTBEAT_MS)] });
    const dir = mkdtempSync(join(tmpdir(), 'prism-fleet-routing-'));
    for (const name of names) writeFileSync(join(dir, `${name}.yaml`), namespaceYaml(name));
    const applied = await runCli(['namespace', 'apply', dir, '--admin', admin.endpoint]);
    expect(applied.code, applied.stderr).toBe(0);
    await Promise.all([startFleetProxy('route-a'), startFleetProxy('route-b')]);
    await eventually(
      'both proxies owning namespaces',
      async () => {
        const list = await runCli(['namespace', 'list', '--admin', admin.endpoint, '--json']);
        const rows = JSON.parse(list.stdout) as Array<{ name: string; ownerProxy: string }>;
        const ours = rows.filter((r) => names.includes(r.name));
        for (const row of ours) owners.set(row.name, row.ownerProxy);
        if (new Set(ours.map((r) => r.ownerProxy)).size !== 2) throw new Error(JSON.stringify(ours));
        // Both proxies have the route table and serve only what they own: a value written through
        // the other proxy is read back through the owner. Until every heartbeat has landed, the
        // proxy that owned a namespace before the second one joined still serves it from its own
        // memstore, and a write there is not seen through the new owner.
        for (const name of names) {
          const token = Buffer.from(`ready ${Math.random()}`);
          const [writer, reader] = [
            client(other(name), name, 'cache'),
            client(owners.get(name)!, name, 'cache'),
          ];
          try {
            await writer.set('ready', token);
            const got = await reader.get('ready');
            if (!Buffer.from(got.value).equals(token)) throw new Error(`${name}: ownership still moving`);
          } finally {
            writer.close();
            reader.close();
          }
        }
      },
      { timeoutMs: 20_000 },
    );
  }, 90_000);

  afterAll(async () => {
    for (const proxy of Object.values(proxies)) await proxy.stop();
    expect(await admin?.stop()).toBe(0);
  });

  it('writes through the proxy that does not own a namespace and reads through the owner', async () => {
    for (const name of names) {
      const value = Buffer.from(`value of ${name}`);
      await client(other(name), name, 'cache').set('greeting', value);
      const got = await client(owners.get(name)!, name, 'cache').get('greeting');
      expect(Buffer.from(got.value).toString()).toBe(`value of ${name}`);
    }
    // Each proxy forwarded the Sets of the namespaces the other owns, and they succeeded (code 0).
    for (const id of ['route-a', 'route-b']) {
      const metrics = await (
        await fetch(`http://127.0.0.1:${proxies[id]!.ready.httpPort as number}/metrics`)
      ).text();
      const forwarded = names.filter((n) => owners.get(n) !== id);
      for (const name of forwarded)
        expect(metrics).toMatch(
          new RegExp(`prism_proxy_forwarded_total\\{namespace="${name}",code="0"\\} [1-9]`),
        );
    }
  });

  it('serves the CLI through either proxy', async () => {
    const name = names[0]!;
    for (const id of ['route-a', 'route-b']) {
      const set = await runCli([
        'kv',
        'set',
        `cli-${id}`,
        `from ${id}`,
        '-n',
        name,
        '--proxy',
        endpoints[id]!,
      ]);
      expect(set.code, set.stderr).toBe(0);
    }
    const get = await runCli(['kv', 'get', 'cli-route-a', '-n', name, '--proxy', endpoints['route-b']!]);
    expect(get.stdout).toBe('from route-a');
    const missing = await runCli(['kv', 'get', 'cli-none', '-n', name, '--proxy', endpoints[other(name)]!]);
    expect(missing.code).toBe(1);
  });

  it('serves the Python example client through the proxy that does not own its namespace', async () => {
    const name = names[3]!;
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, 'examples/clients/python/run.sh'),
      [endpoints[other(name)]!, name, name],
      { timeout: 300_000 },
    );
    expect(stdout).toContain('kv ok: python/');
    expect(stdout).toContain('publish/consume ok: ');
  }, 320_000);

  it('forwards streams: Subscribe and PublishStream through the proxy that does not own the namespace', async () => {
    const name = names[1]!;
    const far = other(name);
    const subscriber = client(far, name);
    const stream = subscriber.subscribe({ maxInFlight: 4 });
    const received: SubscribeResponse[] = [];
    stream.on('data', (r: SubscribeResponse) => received.push(r));
    stream.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const publisher = client(far, name).publishStream();
    await Promise.all(
      ['one', 'two', 'three'].map((p) => publisher.publish({ topic: 'greetings', payload: Buffer.from(p) })),
    );
    await publisher.end();
    await eventually('three deliveries through the forwarding proxy', async () => {
      if (received.length < 3) throw new Error(`${received.length} deliveries`);
    });
    expect(received.map((r) => Buffer.from(r.message!.payload).toString())).toEqual(['one', 'two', 'three']);
    for (const r of received) {
      await subscriber.acknowledge({
        subscriptionId: r.subscriptionId,
        deliveryId: r.deliveryId,
        success: true,
      });
    }
    stream.cancel();
  });

  it('forwards a Consume stream with its in-band acknowledgements', async () => {
    const name = names[4]!;
    const far = other(name);
    const consumer = client(far, name);
    const stream = consumer.consume({ maxInFlight: 8 });
    const received: string[] = [];
    stream.on('data', (r: ConsumeResponse) => {
      received.push(...r.deliveries.map((d) => Buffer.from(d.message!.payload).toString()));
      consumer.ack(
        stream,
        r.deliveries.map((d) => d.deliveryId),
      );
    });
    stream.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    for (const p of ['alpha', 'beta'])
      await client(far, name).publish({ topic: 'greetings', payload: Buffer.from(p) });
    await eventually('two deliveries on the forwarded Consume stream', async () => {
      if (received.length < 2) throw new Error(`${received.length} deliveries`);
    });
    expect(received).toEqual(['alpha', 'beta']);
    stream.cancel();
  });

  it('answers NOT_FOUND for a namespace that does not exist, on either proxy', async () => {
    for (const id of ['route-a', 'route-b']) {
      await expect(client(id, `${prefix}-none`, 'cache').get('k')).rejects.toMatchObject({
        code: 'E_NOT_FOUND',
      });
    }
  });

  it('never forwards a call twice: a forwarded call for a namespace not served here is UNAVAILABLE', async () => {
    const name = names[2]!;
    const KeyValueClient = makeGenericClientConstructor(grpcServiceDefinition(KeyValue), 'KeyValue');
    const kv = new KeyValueClient(endpoints[other(name)]!, credentials.createInsecure()) as unknown as {
      get: (req: unknown, md: Metadata, cb: (err: unknown) => void) => void;
      close: () => void;
    };
    const metadata = new Metadata();
    metadata.set('x-prism-namespace', name);
    metadata.set('x-prism-forwarded-by', 'another-proxy');
    const err = await new Promise<{ code: number; details: string }>((resolve) =>
      kv.get(create(GetRequestSchema, { key: 'k' }), metadata, (e) =>
        resolve(e as { code: number; details: string }),
      ),
    );
    kv.close();
    expect(err.code).toBe(14);
    expect(err.details).toBe(
      `namespace '${name}' was forwarded here by proxy 'another-proxy' but is not served here (its partition is moving)`,
    );
  });

  it('hands the namespaces of a draining proxy over without a failed call, and ends the streams it forwards', async () => {
    const calls: string[] = [];
    let stop = false;
    const load = (async () => {
      let i = 0;
      while (!stop) {
        const name = names[i++ % names.length]!;
        try {
          await client('route-b', name, 'cache').set(`k${i}`, Buffer.from(`v${i}`));
          calls.push('OK');
        } catch (err) {
          calls.push((err as { code: string }).code);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // A stream route-a forwards to route-b ends with UNAVAILABLE when route-a drains.
    const ownedByB = names.find((n) => owners.get(n) === 'route-b')!;
    const forwardedStream = client('route-a', ownedByB).subscribe({});
    const streamEnd = new Promise<number>((resolve) => {
      forwardedStream.on('error', (err: { code: number }) => resolve(err.code));
      forwardedStream.on('end', () => resolve(0));
    });
    forwardedStream.on('data', () => undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(await proxies['route-a']!.stop('SIGTERM')).toBe(0);
    expect(await streamEnd).toBe(14);
    delete proxies['route-a'];
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await load;
    expect(calls.filter((c) => c !== 'OK')).toEqual([]);
    expect(calls.length).toBeGreaterThan(20);
    for (const name of names) {
      await client('route-b', name, 'cache').set('after', Buffer.from('drain'));
    }
  }, 30_000);
});
