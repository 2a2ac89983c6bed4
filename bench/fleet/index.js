#!/usr/bin/env node
// bench/fleet: a fleet of proxies on one admin with a real PostgreSQL store (issue 23).
//
//   1. Aggregate KeyValue Get throughput with 1, 2 and 3 proxies following one admin. The
//      namespaces are spread over the proxies by the admin (CRC-32 partitions, rendezvous hashing
//      over live proxies); each proxy is loaded only with namespaces it owns, called directly on
//      that proxy (the owner comes from the admin's GetNamespace, as `prismctl namespace get
//      --json` shows it), so no forwarding hop is measured. One h2load per proxy, same
//      connections and streams for every proxy, so the aggregate grows only if the machine has
//      room for another proxy.
//   2. Failover: with 3 proxies, SIGKILL one and time, per namespace it owned, until a Get through
//      the new owner (another proxy) succeeds. The admin decides: a proxy that has not
//      heartbeated for 3 intervals loses its partitions; the survivors learn theirs on their next
//      heartbeat and start the runners.
//
//   node bench/fleet/index.js [--duration 8] [--warmup 2] [--namespaces 12] [--heartbeat 2000]
//                             [--connections 4] [--streams 8] [--per-proxy 2] [--json out.json]
//
// Each proxy gets `--connections` HTTP/2 connections × `--streams` streams, split over up to
// `--per-proxy` of the namespaces it owns (one h2load per namespace).
//
// Needs: `npm run build`, h2load (bash bench/proxy/setup.sh), PRISM_TEST_POSTGRES_URL and
// PRISM_TEST_REDIS_URL (scripts/test-services.sh env). Everything listens on 127.0.0.1. The admin's
// tables go into a schema of their own (dropped at the end); Redis keys are the bench's own
// namespaces'.
import { create, toBinary } from '@bufbuild/protobuf';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
/* global fetch */
import { AdminClient } from '../../dist/client/admin-client.js';
import { KeyValueClient } from '../../dist/client/kv-client.js';
import { GetRequestSchema } from '../../dist/gen/prism/data/v1/keyvalue_pb.js';
import {
  cpuSeconds,
  grpcFrame,
  loadAverage,
  machine,
  machineBusySeconds,
  processTree,
  ROOT,
  runProcess,
  sleep,
  startProcess,
} from '../proxy/lib.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    namespaces: { type: 'string', default: '24' },
    'per-proxy': { type: 'string', default: '2' },
    heartbeat: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '4' },
    streams: { type: 'string', default: '8' },
    json: { type: 'string' },
  },
});
const D = Number(values.duration);
const WARM = Number(values.warmup);
const NAMESPACES = Number(values.namespaces);
const HEARTBEAT_MS = Number(values.heartbeat);
const C = Number(values.connections);
const PER_PROXY = Number(values['per-proxy']);
const M = Number(values.streams);
const PG_URL = process.env.PRISM_TEST_POSTGRES_URL;
const REDIS_URL = process.env.PRISM_TEST_REDIS_URL;
if (!PG_URL || !REDIS_URL) {
  console.error(
    'bench/fleet needs PRISM_TEST_POSTGRES_URL and PRISM_TEST_REDIS_URL (scripts/test-services.sh env)',
  );
  process.exit(2);
}
const node = process.execPath;
const run = join(ROOT, 'bin/run.js');
const tag = `fb${process.pid}`;
const schema = `fleet_bench_${process.pid}`;
const work = mkdtempSync(join(tmpdir(), 'prism-fleet-bench-'));
const KEY = 'k';
const log = (...a) => console.error('[fleet]', ...a);

const results = {
  machine: { ...machine(), cpuLimit: '2 cores (the whole machine), shared with other work' },
  settings: {
    duration: D,
    warmup: WARM,
    namespaces: NAMESPACES,
    heartbeatMs: HEARTBEAT_MS,
    connections: C,
    streams: M,
  },
  throughput: {},
  failover: {},
};

// ---- the admin on PostgreSQL --------------------------------------------------------------------
const backends = join(work, 'backends.yaml');
writeFileSync(backends, `backends:\n  redis:\n    - { name: bench, endpoint: '${REDIS_URL}' }\n`);
const nsDir = join(work, 'namespaces');
mkdirSync(nsDir);
const names = Array.from({ length: NAMESPACES }, (_, i) => `${tag}-n${i}`);
for (const name of names)
  writeFileSync(
    join(nsDir, `${name}.yaml`),
    `namespace: ${name}\nteam: bench\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n`,
  );

const admin = await startProcess(
  node,
  [
    run,
    'admin',
    'serve',
    '--no-auth',
    '--listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
    '--store-schema',
    schema,
    '--backends',
    backends,
    '--heartbeat-interval',
    String(HEARTBEAT_MS),
  ],
  'prism admin serving',
  // The store URL carries a password: through the flag's environment variable, not argv.
  { env: { PRISM_HOME: join(work, 'admin-home'), PRISM_ADMIN_STORE: PG_URL } },
);
const adminAddr = `127.0.0.1:${admin.ready.port}`;
const adminClient = new AdminClient(adminAddr);
const proxies = new Map(); // id -> { id, port, httpPort, pid, stop }

async function cleanup() {
  for (const p of proxies.values()) await p.stop('SIGKILL').catch(() => {});
  adminClient.close();
  await admin.stop().catch(() => {});
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await db.end();
  rmSync(work, { recursive: true, force: true });
}

try {
  const applied = await runProcess(node, [run, 'namespace', 'apply', nsDir, '--admin', adminAddr, '--json']);
  if (applied.code !== 0) throw new Error(`namespace apply failed: ${applied.stderr}${applied.stdout}`);
  const getBody = join(work, 'Get.bin');
  writeFileSync(getBody, grpcFrame(toBinary(GetRequestSchema, create(GetRequestSchema, { key: KEY }))));

  async function startProxy(id) {
    const p = await startProcess(
      node,
      [
        run,
        'proxy',
        'serve',
        '--admin',
        adminAddr,
        '--proxy-id',
        id,
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
      ],
      'prism proxy serving',
      { env: { PRISM_HOME: join(work, `home-${id}`) } },
    );
    const proxy = { id, port: p.ready.port, httpPort: p.ready.httpPort, pid: p.child.pid, stop: p.stop };
    proxies.set(id, proxy);
    return proxy;
  }

  /** Owner id of each namespace, as the admin sees it now. */
  async function owners() {
    const out = {};
    for (const name of names) out[name] = (await adminClient.get(name)).assignment?.ownerProxy ?? '';
    return out;
  }

  /** One Get on `proxy` for `namespace`: true when it answers (found or not). */
  async function serves(proxy, namespace) {
    const client = new KeyValueClient(`127.0.0.1:${proxy.port}`, { namespace, timeoutMs: 1000 });
    try {
      await client.get(KEY);
      return true;
    } catch {
      return false;
    } finally {
      client.close();
    }
  }

  /** Waits until every namespace's owner is one of `ids` and that owner answers for it. */
  async function settled(ids, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const own = await owners();
      let ok = true;
      for (const name of names) {
        const p = proxies.get(own[name]);
        if (!p || !ids.includes(p.id) || !(await serves(p, name))) {
          ok = false;
          break;
        }
      }
      if (ok) return own;
      if (Date.now() > deadline)
        throw new Error(`namespaces did not settle on ${ids.join(', ')}: ${JSON.stringify(own)}`);
      await sleep(200);
    }
  }

  async function h2load(proxy, namespace, seconds, connections) {
    const args = [
      '-c',
      String(connections),
      '-m',
      String(M),
      '-t',
      '1',
      '-D',
      String(seconds),
      '-d',
      getBody,
    ];
    args.push(
      '-H',
      'content-type: application/grpc',
      '-H',
      'te: trailers',
      '-H',
      `x-prism-namespace: ${namespace}`,
    );
    args.push(`http://127.0.0.1:${proxy.port}/prism.data.v1.KeyValue/Get`);
    const { code, stdout, stderr } = await runProcess('h2load', args, { timeoutMs: (seconds + 30) * 1000 });
    if (code !== 0) throw new Error(`h2load failed (${code}): ${stderr}\n${stdout}`);
    const num = (re) => Number(re.exec(stdout)?.[1] ?? NaN);
    return {
      reqPerSec: num(/finished in [\d.]+m?s, ([\d.]+) req\/s/),
      succeeded: num(/(\d+) succeeded/),
      failed: num(/(\d+) failed/),
    };
  }

  /** prism_proxy_requests_total by gRPC code on one proxy. */
  async function codes(proxy) {
    const text = await (await fetch(`http://127.0.0.1:${proxy.httpPort}/metrics`)).text();
    const out = {};
    for (const m of text.matchAll(/^prism_proxy_requests_total\{[^}]*code="([^"]+)"[^}]*\} (\d+)/gm))
      out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
    return out;
  }

  // ---- 1. throughput with 1, 2, 3 proxies -----------------------------------------------------
  for (const count of [1, 2, 3]) {
    while (proxies.size < count) await startProxy(`${tag}-p${proxies.size + 1}`);
    const ids = [...proxies.keys()];
    const own = await settled(ids);
    // Every namespace has a value to read (Set through its owner).
    for (const name of names) {
      const client = new KeyValueClient(`127.0.0.1:${proxies.get(own[name]).port}`, {
        namespace: name,
        timeoutMs: 5000,
      });
      await client.set(KEY, new Uint8Array(100).fill(7));
      client.close();
    }
    // Each proxy is loaded through up to PER_PROXY of the namespaces it owns, its C connections
    // split between them (a proxy that owns none is reported idle).
    const targets = ids.flatMap((id) => {
      const mine = names.filter((n) => own[n] === id).slice(0, PER_PROXY);
      return mine.map((namespace) => ({
        proxy: proxies.get(id),
        namespace,
        connections: Math.max(1, Math.floor(C / mine.length)),
      }));
    });
    const idle = ids.filter((id) => !targets.some((t) => t.proxy.id === id));
    const loaded = ids.filter((id) => !idle.includes(id)).map((id) => proxies.get(id));
    await Promise.all(targets.map((t) => h2load(t.proxy, t.namespace, WARM, t.connections)));
    const before = await Promise.all(loaded.map((p) => codes(p)));
    const pids = ids.flatMap((id) => processTree(proxies.get(id).pid));
    const cpu0 = cpuSeconds(pids);
    const busy0 = machineBusySeconds();
    const load0 = loadAverage();
    const t0 = performance.now();
    const runs = await Promise.all(targets.map((t) => h2load(t.proxy, t.namespace, D, t.connections)));
    const seconds = (performance.now() - t0) / 1000;
    const proxyCores = (cpuSeconds(pids) - cpu0) / seconds;
    const machineCores = (machineBusySeconds() - busy0) / seconds;
    const after = await Promise.all(loaded.map((p) => codes(p)));
    // gRPC status codes the loaded proxies counted during the measured phase.
    const codeDiff = {};
    after.forEach((c, i) => {
      for (const [k, v] of Object.entries(c)) codeDiff[k] = (codeDiff[k] ?? 0) + v - (before[i][k] ?? 0);
    });
    const okCalls = codeDiff.OK ?? 0;
    const notOk = Object.fromEntries(Object.entries(codeDiff).filter(([k, v]) => k !== 'OK' && v > 0));
    const perProxy = loaded.map((p) => {
      const mine = runs.filter((_, i) => targets[i].proxy === p);
      return {
        proxy: p.id,
        namespaces: targets.filter((t) => t.proxy === p).map((t) => t.namespace),
        reqPerSec: Math.round(mine.reduce((sum, r) => sum + r.reqPerSec, 0)),
        failed: mine.reduce((sum, r) => sum + r.failed, 0),
      };
    });
    const ownedCount = Object.fromEntries(ids.map((id) => [id, names.filter((n) => own[n] === id).length]));
    const aggregate = Math.round(perProxy.reduce((s, r) => s + r.reqPerSec, 0));
    results.throughput[count] = {
      aggregate,
      perProxy,
      owned: ownedCount,
      idleProxies: idle,
      grpcOk: okCalls,
      grpcNotOk: notOk,
      proxyCores: +proxyCores.toFixed(2),
      machineCores: +machineCores.toFixed(2),
      load: `${load0} → ${loadAverage()}`,
    };
    log(
      `${count} prox${count === 1 ? 'y' : 'ies'}: ${aggregate} Get/s aggregate (${perProxy.map((r) => `${r.proxy}=${r.reqPerSec}`).join(', ')}); ` +
        `owned ${JSON.stringify(ownedCount)}; proxies ${proxyCores.toFixed(2)} cores, machine ${machineCores.toFixed(2)} of 2 cores busy; grpc OK ${okCalls}, not OK ${JSON.stringify(notOk)}; load ${results.throughput[count].load}`,
    );
  }

  // ---- 2. failover: SIGKILL a proxy that owns namespaces --------------------------------------
  const own = await settled([...proxies.keys()]);
  const victim = [...proxies.values()].find((p) => names.some((n) => own[n] === p.id));
  const moved = names.filter((n) => own[n] === victim.id);
  const survivors = [...proxies.values()].filter((p) => p !== victim);
  const killedAt = performance.now();
  process.kill(victim.pid, 'SIGKILL');
  proxies.delete(victim.id);
  const servedAfter = {};
  const ownerAfter = {};
  const deadline = killedAt + 10 * HEARTBEAT_MS + 60_000;
  while (Object.keys(servedAfter).length < moved.length && performance.now() < deadline) {
    for (const name of moved) {
      if (servedAfter[name] !== undefined) continue;
      const owner = (await adminClient.get(name)).assignment?.ownerProxy;
      const p = survivors.find((s) => s.id === owner);
      if (p && (await serves(p, name))) {
        servedAfter[name] = Math.round(performance.now() - killedAt);
        ownerAfter[name] = p.id;
      }
    }
    await sleep(50);
  }
  const times = Object.values(servedAfter).sort((a, b) => a - b);
  results.failover = {
    killed: victim.id,
    namespacesMoved: moved.length,
    servedAgain: times.length,
    msFirst: times[0],
    msLast: times.at(-1),
    perNamespaceMs: servedAfter,
    newOwners: ownerAfter,
    heartbeatMs: HEARTBEAT_MS,
    boundMs: 3 * HEARTBEAT_MS,
    load: loadAverage(),
  };
  log(
    `failover: SIGKILL ${victim.id} (owned ${moved.length} namespaces); served again by a survivor after ${times[0]}–${times.at(-1)} ms ` +
      `(${times.length}/${moved.length}); heartbeat ${HEARTBEAT_MS} ms, expiry after 3 missed = ${3 * HEARTBEAT_MS} ms; load ${results.failover.load}`,
  );
} finally {
  await cleanup();
}

const t = results.throughput;
console.log(
  `bench/fleet — ${results.machine.model}, ${results.machine.cores} cores (the CPU limit: all proxies, the admin, Redis, PostgreSQL and h2load share them), Node ${results.machine.node}`,
);
console.log(
  `KeyValue Get, h2load -c ${C} -m ${M} per proxy, ${D} s after ${WARM} s warm-up, ${NAMESPACES} namespaces over Redis, admin on PostgreSQL:`,
);
for (const n of [1, 2, 3])
  console.log(
    `  ${n} prox${n === 1 ? 'y ' : 'ies'}: ${String(t[n].aggregate).padStart(6)} Get/s  (${t[n].perProxy.map((r) => r.reqPerSec).join(' + ')}; machine ${t[n].machineCores}/2 cores busy, load ${t[n].load})`,
  );
console.log(
  `  ratio 3 proxies ÷ 1 proxy: ${(t[3].aggregate / t[1].aggregate).toFixed(2)}  (2 ÷ 1: ${(t[2].aggregate / t[1].aggregate).toFixed(2)})`,
);
const f = results.failover;
console.log(
  `failover: SIGKILL of a proxy owning ${f.namespacesMoved} namespaces → all served by survivors after ${f.msLast} ms (first ${f.msFirst} ms); heartbeat ${f.heartbeatMs} ms, expiry ${f.boundMs} ms`,
);
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
