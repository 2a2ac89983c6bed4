/**
 * A fleet under load loses a proxy and an admin (docs/fleet.md, Failover): three real proxies and
 * two real admins sharing one PostgreSQL store (a schema of this test), thirty namespaces over
 * Redis (keyvalue), NATS and Kafka (producer and consumer group). Load goes through every proxy;
 * one proxy and the admin the proxies follow are SIGKILLed mid-load. Every namespace is served
 * again within the documented bound, no acknowledged write or message is lost, no message whose
 * Acknowledge returned OK comes again, and every failed call failed with UNAVAILABLE, within the
 * failover window and at most the documented number per namespace.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { SubscribeResponse } from '../../src/gen/prism/data/v1/messaging_pb.js';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import {
  connectPostgres,
  describeWithServices,
  kafkaBrokers,
  natsUrl,
  postgresUrl,
  redisUrl,
  uniqueName,
} from '../support/services.js';

const HEARTBEAT_MS = 500;
const MISSED = 3;
/** What a dead proxy's namespaces need to be served again: docs/fleet.md, plus runner start-up. */
const START_ALLOWANCE_MS = 4_000;
const BOUND_MS = (MISSED + 1) * HEARTBEAT_MS + START_ALLOWANCE_MS;
/** Failed calls per namespace for a client retrying UNAVAILABLE after one interval (docs/fleet.md). */
const MAX_FAILURES_PER_NAMESPACE = MISSED + 2 + Math.ceil(START_ALLOWANCE_MS / HEARTBEAT_MS);
const PACE_MS = 200;
const BACKENDS = ['redis', 'nats', 'kafka'] as const;
type Backend = (typeof BACKENDS)[number];

interface Failure {
  namespace: string;
  at: number;
  code: string;
  what: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await describeWithServices(
  ['postgres', 'redis', 'nats', 'kafka'],
  'a fleet losing a proxy and an admin under load',
  () => {
    const run = uniqueName('fleet').replaceAll('-', '');
    const schema = `fleet_${run}`;
    const namespaces = BACKENDS.flatMap((backend) =>
      Array.from({ length: 10 }, (_, i) => ({ name: `${run}-${backend}-${i}`, backend })),
    );
    const admins: RunningAdmin[] = [];
    const proxies = new Map<string, RunningServer>();
    const endpoints = new Map<string, string>();
    const live = new Set<string>();
    let turn = 0;
    /** The next live proxy, round-robin: load goes through every proxy, as behind a load balancer. */
    const nextProxy = () => {
      const ids = [...live];
      return ids[turn++ % ids.length]!;
    };
    const clients = new Map<string, DataClient>();
    const client = (proxy: string, namespace: string, pattern?: string) => {
      const key = `${proxy}/${namespace}/${pattern ?? ''}`;
      let c = clients.get(key);
      if (!c) {
        c = new DataClient(endpoints.get(proxy)!, {
          namespace,
          ...(pattern ? { pattern } : {}),
          // Long enough that no call ends DEADLINE_EXCEEDED here: the client reports that, like a
          // bare UNAVAILABLE, as E_UNREACHABLE, which then can only mean UNAVAILABLE.
          timeoutMs: 30_000,
        });
        clients.set(key, c);
      }
      return c;
    };

    beforeAll(async () => {
      await ensureBuilt();
      const dir = mkdtempSync(join(tmpdir(), 'prism-fleet-'));
      const catalog = join(dir, 'backends.yaml');
      writeFileSync(
        catalog,
        [
          'backends:',
          `  redis: [{ name: test, endpoint: "${redisUrl()}" }]`,
          `  nats: [{ name: test, endpoint: "${natsUrl()}" }]`,
          `  kafka: [{ name: test, endpoint: "kafka://${kafkaBrokers().join(',')}" }]`,
          '',
        ].join('\n'),
      );
      const adminArgs = [
        ...['--store-schema', schema, '--backends', catalog],
        ...['--heartbeat-interval', String(HEARTBEAT_MS), '--missed-heartbeats', String(MISSED)],
      ];
      admins.push(
        ...(await Promise.all([
          startAdmin({ store: postgresUrl(), extraArgs: adminArgs }),
          startAdmin({ store: postgresUrl(), extraArgs: adminArgs }),
        ])),
      );
      const nsDir = join(dir, 'namespaces');
      const { mkdirSync } = await import('node:fs');
      mkdirSync(nsDir);
      for (const { name, backend } of namespaces) {
        const yaml =
          backend === 'redis'
            ? `namespace: ${name}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots: { store: { backend: redis } }\n`
            : [
                `namespace: ${name}`,
                'team: platform',
                'patterns:',
                '  - name: events',
                '    type: producer',
                `    slots: { sink: { backend: ${backend} } }`,
                '    settings: { topic: orders }',
                '  - name: worker',
                '    type: consumer',
                `    slots: { source: { backend: ${backend} } }`,
                '    settings: { topic: orders, consumer_group: billing, max_retries: 100, ack_timeout: 30s }',
                '',
              ].join('\n');
        writeFileSync(join(nsDir, `${name}.yaml`), yaml);
      }
      // Applied through the second admin; the proxies follow the first and fail over to the second.
      const applied = await runCli(['namespace', 'apply', nsDir, '--admin', admins[1]!.endpoint]);
      expect(applied.code, applied.stderr).toBe(0);
      const adminList = admins.map((a) => a.endpoint).join(',');
      await Promise.all(
        ['p1', 'p2', 'p3'].map(async (id) => {
          const proxy = await startPrismServer(
            [
              ...['proxy', 'serve', '--admin', adminList, '--proxy-id', id],
              ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
            ],
            'prism proxy serving',
          );
          proxies.set(id, proxy);
          endpoints.set(id, `127.0.0.1:${proxy.ready.port as number}`);
          live.add(id);
        }),
      );
    }, 90_000);

    afterAll(async () => {
      for (const c of clients.values()) c.close();
      for (const proxy of proxies.values()) await proxy.stop('SIGKILL');
      for (const admin of admins) await admin.stop('SIGKILL');
      const pg = await connectPostgres();
      await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pg.end();
    });

    it('serves every namespace again within the bound and loses no acknowledged write or message', async () => {
      const failures: Failure[] = [];
      const ackFailures: Failure[] = [];
      const writes = new Map<string, Map<string, string>>(); // namespace → acknowledged key → value
      const published = new Map<string, Set<string>>(); // namespace → acknowledged payloads
      const delivered = new Map<string, Set<string>>();
      const acked = new Map<string, Set<string>>(); // payloads whose Acknowledge returned OK
      const doubled: string[] = [];
      const served = new Map<string, number>(); // namespace → first success after the kill
      let killedAt = 0;
      let stopped = false;
      const success = (namespace: string) => {
        if (killedAt > 0 && !served.has(namespace)) served.set(namespace, Date.now());
      };
      const failed = (list: Failure[], namespace: string, err: unknown, what: string) =>
        list.push({ namespace, at: Date.now(), code: (err as { code?: string }).code ?? String(err), what });
      for (const { name } of namespaces) {
        writes.set(name, new Map());
        published.set(name, new Set());
        delivered.set(name, new Set());
        acked.set(name, new Set());
      }
      // Every proxy serves every namespace (owned or forwarded) before the load starts; the
      // warm-up messages are acknowledged publishes like any other.
      await eventually(
        'every namespace served through every proxy',
        async () => {
          for (const { name, backend } of namespaces)
            for (const id of live) {
              if (backend === 'redis') await client(id, name, 'cache').exists('warm-up');
              else if (!published.get(name)!.has(`warm-${id}`)) {
                await client(id, name, 'events').publish({ payload: Buffer.from(`warm-${id}`) });
                published.get(name)!.add(`warm-${id}`);
              }
            }
        },
        { timeoutMs: 40_000, intervalMs: 500 },
      );
      const list = JSON.parse(
        (await runCli(['namespace', 'list', '--admin', admins[0]!.endpoint, '--json'])).stdout,
      ) as Array<{ name: string; ownerProxy: string }>;
      const owners = new Map(list.map((r) => [r.name, r.ownerProxy]));

      const writer = async (name: string, backend: Backend) => {
        let i = 0;
        while (!stopped) {
          i++;
          const proxy = nextProxy();
          try {
            if (backend === 'redis') {
              await client(proxy, name, 'cache').set(`k${i}`, Buffer.from(`v${i}`));
              writes.get(name)!.set(`k${i}`, `v${i}`);
            } else {
              await client(proxy, name, 'events').publish({ payload: Buffer.from(`m${i}`) });
              published.get(name)!.add(`m${i}`);
            }
            success(name);
          } catch (err) {
            failed(failures, name, err, backend === 'redis' ? 'Set' : 'Publish');
            await sleep(HEARTBEAT_MS); // retry UNAVAILABLE after one interval
          }
          await sleep(PACE_MS);
        }
      };

      const consumer = async (name: string) => {
        while (!stopped) {
          const proxy = nextProxy();
          const stream = client(proxy, name, 'worker').subscribe({ maxInFlight: 32 });
          stream.on('data', (r: SubscribeResponse) => {
            const payload = Buffer.from(r.message!.payload).toString();
            if (acked.get(name)!.has(payload)) doubled.push(`${name}/${payload}`);
            delivered.get(name)!.add(payload);
            const via = nextProxy();
            client(via, name, 'worker')
              .acknowledge({ subscriptionId: r.subscriptionId, deliveryId: r.deliveryId, success: true })
              .then(
                () => acked.get(name)!.add(payload),
                (err: unknown) => failed(ackFailures, name, err, 'Acknowledge'),
              );
          });
          const ended = await new Promise<unknown>((resolve) => {
            stream.on('error', resolve);
            stream.on('end', () => resolve(undefined));
            const timer = setInterval(() => {
              if (stopped) {
                clearInterval(timer);
                stream.cancel();
              }
            }, 100);
            stream.on('close', () => clearInterval(timer));
          });
          if (stopped) return;
          if (ended) failed(failures, name, client(proxy, name).streamError(ended as never), 'Subscribe');
          await sleep(HEARTBEAT_MS);
        }
      };

      const loops = [
        ...namespaces.map(({ name, backend }) => writer(name, backend)),
        ...namespaces.filter((n) => n.backend !== 'redis').map(({ name }) => consumer(name)),
      ];

      await sleep(4_000);
      // The proxy owning most namespaces dies, and the admin every proxy follows first.
      const counts = new Map<string, number>();
      for (const owner of owners.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
      const victim = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
      const moved = namespaces.filter((n) => owners.get(n.name) === victim).map((n) => n.name);
      live.delete(victim);
      killedAt = Date.now();
      await Promise.all([proxies.get(victim)!.stop('SIGKILL'), admins[0]!.stop('SIGKILL')]);
      proxies.delete(victim);

      await eventually(
        'every namespace of the dead proxy served again',
        async () => {
          const missing = moved.filter((n) => !served.has(n));
          if (missing.length > 0) throw new Error(missing.join(', '));
        },
        { timeoutMs: BOUND_MS * 3, intervalMs: 100 },
      );
      await sleep(3_000); // load after the failover
      stopped = true;
      await Promise.all(loops);

      // Served again within the bound, every namespace of the dead proxy.
      const trail = (name: string) =>
        `${name}: ${JSON.stringify(failures.filter((f) => f.namespace === name).map((f) => [f.at - killedAt, f.what, f.code]))}`;
      for (const name of moved)
        expect(served.get(name)! - killedAt, trail(name)).toBeLessThanOrEqual(
          BOUND_MS + PACE_MS + HEARTBEAT_MS,
        );
      // Failed calls: UNAVAILABLE only (E_UNREACHABLE is the client's name for an UNAVAILABLE that
      // no server sent: the connection to the dead proxy), inside the failover window, and at most
      // the documented number per namespace.
      const otherFailures = failures.filter((f) => f.code !== 'E_UNAVAILABLE' && f.code !== 'E_UNREACHABLE');
      expect(otherFailures, JSON.stringify(otherFailures)).toEqual([]);
      for (const f of failures)
        expect(f.at - killedAt, `${f.what} ${f.namespace}`).toBeLessThanOrEqual(BOUND_MS + HEARTBEAT_MS);
      for (const { name } of namespaces) {
        expect(
          failures.filter((f) => f.namespace === name && f.what !== 'Subscribe').length,
          name,
        ).toBeLessThanOrEqual(MAX_FAILURES_PER_NAMESPACE);
      }
      // An Acknowledge fails only while the owner is unreachable, or for a stream that ended.
      const otherAckFailures = ackFailures.filter(
        (f) => f.code !== 'E_UNAVAILABLE' && f.code !== 'E_UNREACHABLE' && f.code !== 'E_NOT_FOUND',
      );
      expect(otherAckFailures, JSON.stringify(otherAckFailures)).toEqual([]);

      // No acknowledged write lost: every key reads back its value, through a live proxy.
      for (const { name, backend } of namespaces) {
        if (backend !== 'redis') continue;
        const keys = [...writes.get(name)!.keys()];
        expect(keys.length, name).toBeGreaterThanOrEqual(5);
        const res = await client(nextProxy(), name, 'cache').batchGet(keys);
        expect(
          res.results.map((r) => Buffer.from(r.value).toString()),
          name,
        ).toEqual(keys.map((k) => writes.get(name)!.get(k)));
      }
      // No acknowledged message lost: the consumer group gets every one (a Kafka group waits for
      // the dead member's session timeout first), and none comes again after its Acknowledge.
      stopped = false;
      const drain = namespaces.filter((n) => n.backend !== 'redis').map(({ name }) => consumer(name));
      await eventually(
        'every acknowledged message delivered to its consumer group',
        async () => {
          const missing = namespaces
            .filter((n) => n.backend !== 'redis')
            .flatMap(({ name }) =>
              [...published.get(name)!]
                .filter((p) => !delivered.get(name)!.has(p))
                .map((p) => `${name}/${p}`),
            );
          if (missing.length > 0)
            throw new Error(`${missing.length} missing, e.g. ${missing.slice(0, 5).join(' ')}`);
        },
        { timeoutMs: 45_000, intervalMs: 500 },
      );
      stopped = true;
      await Promise.all(drain);
      expect(doubled, JSON.stringify(doubled)).toEqual([]);
      for (const { name, backend } of namespaces)
        if (backend !== 'redis') expect(published.get(name)!.size, name).toBeGreaterThanOrEqual(5);
    }, 150_000);
  },
);
