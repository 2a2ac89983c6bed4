#!/usr/bin/env node
// Benchmark (not a test): every goal of issue 15 ("Data-plane performance") in one run, the
// contenders interleaved round by round, ending with a goals table (value, goal, met/missed):
//   - unary KeyValue Get and BatchGet of 100 keys, h2load with pre-encoded gRPC bodies, on the Go
//     anchor (a minimal grpc-go → go-redis proxy, bench/proxy/go-anchor, built when a Go toolchain
//     exists), a minimal grpc-js → ioredis proxy (minimal-proxy.js), prismctl proxy serve with 1
//     worker and with one worker per core, and direct Redis (ioredis MGET of the same keys);
//   - publish → consume through PublishStream + Consume on NATS and Kafka next to the raw client's
//     batched publish and consume (stream.js, one counted round of it, after its warm-up round, per round here);
//   - the tail at a fixed 1,000 calls/s, open loop, from the Go client go-anchor/openloop: direct
//     Redis, prism (1 worker and all cores) and the Go anchor;
//   - CPU of every process (server, h2load, Redis, everything else on the machine; the proxy and
//     the client per message) and the RSS of every worker under load.
// Everything listens on 127.0.0.1.
//   npm run build && eval "$(bash scripts/test-services.sh env)"
//   node bench/proxy/goals.js [--rounds 3] [--duration 6] [--skip-messaging] [--json out.json]
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { create, toBinary } from '@bufbuild/protobuf';
import { DataClient } from '../../dist/client/data-client.js';
import { BatchGetRequestSchema, GetRequestSchema } from '../../dist/gen/prism/data/v1/keyvalue_pb.js';
import {
  BENCH,
  buildGo,
  goBinary,
  grpcFrame,
  h2load,
  loadAverage,
  loadPhase,
  machine,
  measured,
  median,
  prismRedisKey,
  runProcess,
  startBenchServer,
  startPrismProxy,
} from './lib.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '8' },
    streams: { type: 'string', default: '8' },
    rate: { type: 'string', default: '1000' },
    'latency-duration': { type: 'string', default: '8' },
    'latency-rounds': { type: 'string', default: '2' },
    'batch-keys': { type: 'string', default: '100' },
    'value-size': { type: 'string', default: '100' },
    // `proxy serve --v8-flags` of this tree's prism (default: its own default); --semi-space <MiB>
    // is short for --v8-flags=--max-semi-space-size=<MiB>.
    'v8-flags': { type: 'string' },
    'semi-space': { type: 'string', default: '' },
    // A/B: a copy of the package (bin/, dist/, package.json, node_modules) run as "prism w1
    // baseline" beside this tree's prism w1; --baseline-v8-flags if that copy has the flag,
    // --baseline-semi-space (NODE_OPTIONS) if it is older.
    baseline: { type: 'string' },
    'baseline-v8-flags': { type: 'string' },
    'baseline-semi-space': { type: 'string', default: '' },
    // Leave out what an A/B run does not need.
    only: { type: 'string' },
    methods: { type: 'string', default: 'Get,BatchGet' },
    'skip-messaging': { type: 'boolean', default: false },
    'skip-latency': { type: 'boolean', default: false },
    // Messaging: messages per cell of stream.js, its backends, and the producer's batch size.
    // 100,000: a cell of 20,000 lasts about a second and measures the start more than the rate
    // (bench/RESULTS.md, session 19: there even the Go anchor for Kafka came out at 1.04 × raw,
    // against 1.31–2.45 × in cells of 100,000).
    count: { type: 'string', default: '100000' },
    backends: { type: 'string', default: 'nats,kafka' },
    batch: { type: 'string', default: '32' },
    json: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const D = Number(values.duration);
const WARM = Number(values.warmup);
const CORES = availableParallelism();
const NS = 'bench-kv';
const PATTERN = 'cache';
const KEY_PREFIX = `keyvalue/${PATTERN}/`;
const BATCH = Number(values['batch-keys']);
const METHODS = new Set(values.methods.split(','));
const MSG_BACKENDS = values['skip-messaging'] ? [] : values.backends.split(',').filter(Boolean);
const redisUrl = process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const node = process.execPath;
const log = (...a) => console.error(`[goals ${new Date().toISOString().slice(11, 19)}]`, ...a);
const results = {
  command: `node bench/proxy/goals.js ${process.argv.slice(2).join(' ')}`.trim(),
  machine: machine(),
  loadBefore: loadAverage(),
  startedAt: new Date().toISOString(),
  rounds: {},
  latency: {},
  messaging: {},
  loadDuring: [],
};

// ---- inputs -------------------------------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'prism-bench-goals-'));
const kvDir = join(work, 'ns');
mkdirSync(kvDir);
writeFileSync(
  join(kvDir, 'kv.yaml'),
  `namespace: ${NS}\nteam: bench\npatterns:\n  - name: ${PATTERN}\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n`,
);
const backends = join(work, 'backends.yaml');
writeFileSync(backends, `backends:\n  redis:\n    - { name: bench, endpoint: ${redisUrl} }\n`);
const batchKeys = Array.from({ length: BATCH }, (_, i) => `b${i}`);
const messages = {
  Get: toBinary(GetRequestSchema, create(GetRequestSchema, { key: 'k' })),
  BatchGet: toBinary(BatchGetRequestSchema, create(BatchGetRequestSchema, { keys: batchKeys })),
};
const bodyFile = (method) => join(work, `${method}.bin`);
for (const [m, msg] of Object.entries(messages)) writeFileSync(bodyFile(m), grpcFrame(msg));

// ---- contenders ---------------------------------------------------------------------------------
log(`machine ${JSON.stringify(results.machine)}; load average ${results.loadBefore}`);
const h2v = await runProcess('h2load', ['--version']);
if (h2v.code !== 0) throw new Error('h2load not found: run bash bench/proxy/setup.sh');
results.machine.h2load = h2v.stdout.trim();
const anchorBin = await buildGo('.', 'go-anchor', log);
const openloopBin = anchorBin ? await buildGo('./openloop', 'go-openloop', log) : undefined;
if (anchorBin) {
  results.machine.go = (await runProcess(goBinary(), ['version'])).stdout.trim();
} else log('no Go toolchain: the Go anchor is left out and the tail is measured with the Node client');

const v8Flags =
  values['v8-flags'] ?? (values['semi-space'] ? `--max-semi-space-size=${values['semi-space']}` : undefined);
results.v8Flags = v8Flags ?? '(proxy serve default)';
const prism =
  (workers, root, flags = v8Flags, semiSpace = '') =>
  () =>
    startPrismProxy({
      namespaces: kvDir,
      backends,
      workers,
      home: join(work, 'home'),
      root,
      v8Flags: flags,
      nodeOptions: semiSpace ? `--max-semi-space-size=${semiSpace}` : undefined,
    });
const PRISM_ALL = `prism w${CORES}`;
const starts = {
  ...(anchorBin
    ? { 'go anchor': () => startBenchServer(anchorBin, ['-redis', redisUrl, '-key-prefix', KEY_PREFIX]) }
    : {}),
  'minimal grpc-js w1': () =>
    startBenchServer(node, [
      join(BENCH, 'minimal-proxy.js'),
      '--redis',
      redisUrl,
      '--key-prefix',
      KEY_PREFIX,
    ]),
  'prism w1': prism(1),
  [PRISM_ALL]: prism(CORES),
  ...(values.baseline
    ? {
        'prism w1 baseline': prism(
          1,
          values.baseline,
          values['baseline-v8-flags'],
          values['baseline-semi-space'],
        ),
      }
    : {}),
};
// --only a,b: keep only these contenders (prism w1 always: it seeds the keys).
if (values.only) {
  const keep = new Set([...values.only.split(','), 'prism w1']);
  for (const name of Object.keys(starts)) if (!keep.has(name)) delete starts[name];
}

// ---- phases -------------------------------------------------------------------------------------
async function phase(label, pid, load) {
  const out = await loadPhase(pid, load, { redisUrl });
  (results.rounds[label] ??= []).push(out);
  log(
    `${label.padEnd(28)} ${String(out.perSec).padStart(7)}/s fail ${out.failed}  server ${out.serverCores} cores ` +
      `(${out.serverUsPerCall} µs/call)  h2load ${out.generatorCores}  redis ${out.redisCores}  other ${out.otherCores}  ` +
      `RSS ${out.rssEachMiB.join(' + ')} MiB`,
  );
  return out;
}

const h2 = (port, method, seconds) =>
  h2load({
    port,
    path: `/prism.data.v1.KeyValue/${method}`,
    bodyFile: bodyFile(method),
    namespace: NS,
    seconds,
    connections: Number(values.connections),
    streams: Number(values.streams),
  });

/** Direct Redis through ioredis with auto-pipelining (the Prism driver's client): MGET of the keys. */
async function mgetLoad() {
  const { code, stdout, stderr } = await runProcess(
    node,
    [
      join(BENCH, 'redis-load.js'),
      ...['--url', redisUrl, '--key', prismRedisKey(NS, PATTERN, 'b'), '--mget', String(BATCH)],
      ...['--duration', String(D), '--warmup', '1', '--autopipelining'],
    ],
    { timeoutMs: (D + 30) * 1000 },
  );
  if (code !== 0) throw new Error(`redis-load failed: ${stderr}`);
  const r = JSON.parse(stdout.trim().split('\n').pop());
  return {
    perSec: r.opsPerSec,
    seconds: r.seconds,
    succeeded: r.ops,
    failed: r.errors,
    clientCpu: r.clientCpuSec,
  };
}

/** One round of stream.js (its own proxy; stream and raw cells per backend). */
async function messagingRound(round) {
  const out = join(work, `stream-${round}.json`);
  const { code, stderr } = await runProcess(
    node,
    [
      join(BENCH, 'stream.js'),
      ...['--rounds', '1', '--count', values.count, '--batch', values.batch],
      ...['--backends', MSG_BACKENDS.join(','), '--json', out],
    ],
    { timeoutMs: 600_000 },
  );
  if (code !== 0) {
    log(`stream.js failed (${code}): ${stderr.slice(-1500)}`);
    return;
  }
  const r = JSON.parse(readFileSync(out, 'utf8'));
  for (const [backend, kinds] of Object.entries(r.results))
    for (const [kind, cells] of Object.entries(kinds))
      for (const cell of cells) {
        ((results.messaging[backend] ??= {})[kind] ??= []).push(cell);
        log(
          `publish→consume ${backend} ${kind.padEnd(6)} ${String(cell.rate).padStart(6)} msg/s  received ${cell.received}/${values.count}  ` +
            `proxy ${cell.proxyCpuPerMsgUs} µs/msg  client ${cell.clientCpuPerMsgUs} µs/msg`,
        );
      }
}

const OPEN_LOOP_WARMUP = 1;

/** Open loop at --rate from the Go client (the Node one without Go), with the server's CPU. */
async function openLoop(name, target, pid) {
  const seconds = Number(values['latency-duration']);
  const common = ['-rate', values.rate, '-duration', String(seconds), '-warmup', String(OPEN_LOOP_WARMUP)];
  const [cmd, args] = openloopBin
    ? [
        openloopBin,
        target.redis
          ? [...common, '-target', 'redis', '-redis', redisUrl, '-key', target.redis]
          : [
              ...common,
              ...['-target', 'grpc', '-addr', `127.0.0.1:${target.port}`, '-namespace', NS],
              ...['-body', Buffer.from(messages.Get).toString('base64'), '-conns', String(target.conns ?? 1)],
            ],
      ]
    : [
        node,
        [
          join(BENCH, 'openloop.js'),
          ...['--rate', values.rate, '--duration', String(seconds), '--warmup', String(OPEN_LOOP_WARMUP)],
          ...(target.redis
            ? ['--target', 'redis', '--url', redisUrl, '--key', target.redis]
            : ['--target', 'grpc', '--port', String(target.port), '--namespace', NS]),
          ...(target.redis ? [] : ['--body', grpcFrame(messages.Get).toString('base64')]),
        ],
      ];
  const m = await measured(pid ?? -1, async () => {
    const { code, stdout, stderr } = await runProcess(cmd, args, { timeoutMs: (seconds + 30) * 1000 });
    if (code !== 0) throw new Error(`open loop ${name} failed: ${stderr}`);
    return JSON.parse(stdout.trim().split('\n').pop());
  });
  const r = {
    ...m.result,
    // Every call the server answered while measured: the warm-up second's too.
    serverUsPerCall: pid
      ? +((m.cpu * 1e6) / (Number(values.rate) * (seconds + OPEN_LOOP_WARMUP))).toFixed(1)
      : undefined,
    otherCores: +(
      (m.machineBusy - m.cpu - (m.result.clientCpuSec ?? 0)) /
      (seconds + OPEN_LOOP_WARMUP)
    ).toFixed(2),
  };
  (results.latency[name] ??= []).push(r);
  log(
    `@${values.rate}/s ${name.padEnd(12)} p50 ${r.p50}  p99 ${r.p99}  p99.9 ${r.p999}  max ${r.max} ms  errors ${r.errors}` +
      `${pid ? `  server ${r.serverUsPerCall} µs/call` : ''}  client ${r.clientCpuSec ?? '?'} s CPU  other ${r.otherCores} cores`,
  );
}

// ---- run ----------------------------------------------------------------------------------------
const servers = {};
try {
  for (const [name, start] of Object.entries(starts)) servers[name] = await start();
  // Seed through prism, then check that every server answers Get and BatchGet with the values.
  const value = new Uint8Array(Number(values['value-size'])).fill(120);
  const seeder = new DataClient(`127.0.0.1:${servers['prism w1'].port}`, { namespace: NS, timeoutMs: 5000 });
  try {
    await seeder.set('k', value);
    for (const key of batchKeys) await seeder.set(key, value);
  } finally {
    seeder.close();
  }
  for (const [name, s] of Object.entries(servers)) {
    const client = new DataClient(`127.0.0.1:${s.port}`, { namespace: NS, timeoutMs: 5000 });
    try {
      const got = await client.get('k');
      const batch = (await client.batchGet(batchKeys)).results;
      if (!got.found || got.value.length !== value.length)
        throw new Error(`${name}: Get did not return the value`);
      if (batch.length !== BATCH || batch.some((b) => !b.found))
        throw new Error(`${name}: BatchGet did not return the ${BATCH} values`);
    } finally {
      client.close();
    }
  }
  for (const s of Object.values(servers)) {
    await h2(s.port, 'Get', WARM);
    await h2(s.port, 'BatchGet', WARM);
  }

  // Every contender once per round; latency rounds and messaging rounds between them.
  const latencyRounds = values['skip-latency'] ? 0 : Number(values['latency-rounds']);
  const latencyTargets = {
    redis: [{ redis: prismRedisKey(NS, PATTERN, 'k') }, undefined],
    ...Object.fromEntries(
      ['prism w1', PRISM_ALL, 'go anchor', 'prism w1 baseline']
        .filter((n) => servers[n])
        .map((n) => [n, [{ port: servers[n].port, conns: n === PRISM_ALL ? 2 * CORES : 1 }, servers[n].pid]]),
    ),
  };
  for (let round = 1; round <= ROUNDS; round++) {
    const load = loadAverage();
    results.loadDuring.push(load);
    log(`round ${round}/${ROUNDS}; load average ${load}`);
    if (METHODS.has('Get'))
      for (const [name, s] of Object.entries(servers))
        await phase(`${name} Get`, s.pid, () => h2(s.port, 'Get', D));
    if (METHODS.has('BatchGet')) {
      for (const [name, s] of Object.entries(servers))
        await phase(`${name} BatchGet`, s.pid, () => h2(s.port, 'BatchGet', D));
      await phase(`ioredis MGET ${BATCH}`, -1, mgetLoad);
    }
    if (round <= latencyRounds)
      for (const [name, [target, pid]] of Object.entries(latencyTargets)) await openLoop(name, target, pid);
    if (MSG_BACKENDS.length > 0) await messagingRound(round);
  }
} finally {
  for (const s of Object.values(servers).reverse()) await s.stop().catch(() => undefined);
}

// ---- summary ------------------------------------------------------------------------------------
results.loadAfter = loadAverage();
const med = (label, field = 'perSec') =>
  +median((results.rounds[label] ?? []).map((r) => r[field])).toFixed(1);
const ratio = (a, b) => +(a / b).toFixed(2);
const latMed = (name, p) => +median((results.latency[name] ?? []).map((r) => r[p])).toFixed(3);
const added = (name, p) => +(latMed(name, p) - latMed('redis', p)).toFixed(2);
const msgMed = (backend, kind, field = 'rate') =>
  median((results.messaging[backend]?.[kind] ?? []).map((c) => c[field]));
/** Largest RSS of one worker (not the cluster primary) over a contender's phases. */
const workerRss = (name) =>
  Math.max(
    ...Object.entries(results.rounds)
      .filter(([label]) => label.startsWith(`${name} `))
      .flatMap(([, rs]) =>
        rs.map((r) => Math.max(...(r.rssEachMiB.length > 1 ? r.rssEachMiB.slice(1) : r.rssEachMiB))),
      ),
  );

/** The cluster primary's RSS in the last round prism w<cores> ran, whichever method that was. */
const primaryRss = () =>
  Object.entries(results.rounds)
    .findLast(([label]) => label.startsWith(`${PRISM_ALL} `))?.[1]
    .at(-1)?.rssEachMiB[0];

const goals = [];
const goal = (what, value, target, met, note = '') =>
  goals.push({ what, value, goal: target, met: Number.isFinite(value) ? met(value) : null, note });
for (const backend of MSG_BACKENDS) {
  const s = msgMed(backend, 'stream');
  const r = msgMed(backend, 'raw');
  const cpu = `proxy ${msgMed(backend, 'stream', 'proxyCpuPerMsgUs')} µs/msg, client ${msgMed(backend, 'stream', 'clientCpuPerMsgUs')} (raw ${msgMed(backend, 'raw', 'clientCpuPerMsgUs')}) µs/msg`;
  goal(
    `publish→consume ${backend}: stream ÷ raw batched`,
    ratio(s, r),
    '≥ 0.7',
    (v) => v >= 0.7,
    `${s} vs ${r} msg/s` +
      (results.messaging[backend]?.go
        ? `; Go anchor ${msgMed(backend, 'go')} msg/s, ÷ raw ${ratio(msgMed(backend, 'go'), r)}`
        : ''),
  );
  goal(`publish→consume ${backend}: msg/s`, s, '≥ 5000', (v) => v >= 5000, cpu);
}
const cpuNote = (a, b) =>
  `CPU/call ${med(`${a}`, 'serverUsPerCall')} vs ${med(`${b}`, 'serverUsPerCall')} µs`;
if (METHODS.has('Get') && servers['go anchor'] && servers[PRISM_ALL])
  goal(
    `Get, all cores: prism w${CORES} ÷ Go anchor`,
    ratio(med(`${PRISM_ALL} Get`), med('go anchor Get')),
    '≥ 0.7',
    (v) => v >= 0.7,
    cpuNote(`${PRISM_ALL} Get`, 'go anchor Get'),
  );
if (METHODS.has('Get') && servers['minimal grpc-js w1'])
  goal(
    'Get: prism w1 ÷ minimal grpc-js w1',
    ratio(med('prism w1 Get'), med('minimal grpc-js w1 Get')),
    '≥ 0.95',
    (v) => v >= 0.95,
    cpuNote('prism w1 Get', 'minimal grpc-js w1 Get'),
  );
if (!values['skip-latency']) {
  const limits = { p50: 0.5, p99: 3, p999: 8 };
  for (const name of Object.keys(results.latency).filter((n) => n !== 'redis'))
    for (const [p, limit] of Object.entries(limits))
      goal(
        `tail @${values.rate}/s ${name}: ${p} added over Redis (ms)`,
        added(name, p),
        name.startsWith('prism') ? `≤ +${limit}` : '—',
        (v) => (name.startsWith('prism') ? v <= limit : null),
        `${name} ${latMed(name, p)} vs redis ${latMed('redis', p)} ms`,
      );
}
if (METHODS.has('BatchGet'))
  for (const name of ['prism w1', PRISM_ALL, 'go anchor'].filter((n) => servers[n]))
    goal(
      `BatchGet(${BATCH}) ${name} ÷ ioredis MGET`,
      ratio(med(`${name} BatchGet`), med(`ioredis MGET ${BATCH}`)),
      name.startsWith('prism') ? '≥ 0.8' : '—',
      (v) => (name.startsWith('prism') ? v >= 0.8 : null),
      `CPU/call ${med(`${name} BatchGet`, 'serverUsPerCall')} µs vs MGET client ${med(`ioredis MGET ${BATCH}`, 'serverUsPerCall')} µs`,
    );
for (const name of ['prism w1', PRISM_ALL, 'minimal grpc-js w1', 'go anchor'].filter((n) => servers[n]))
  goal(
    `RSS per worker under load, ${name} (MiB)`,
    +workerRss(name).toFixed(0),
    name.startsWith('prism') ? '≤ 150' : '—',
    (v) => (name.startsWith('prism') ? v <= 150 : null),
    name === PRISM_ALL ? `primary ${primaryRss()} MiB` : '',
  );
results.goals = goals;

const lines = [
  '',
  `== bench/proxy goals (${CORES} cores, ${results.machine.model}; load ${results.loadBefore} → ${results.loadAfter}; per round ${results.loadDuring.join(' | ')}) ==`,
  `prism proxies: --v8-flags ${results.v8Flags}`,
  `unary: median of ${ROUNDS} interleaved rounds, h2load -c ${values.connections} -m ${values.streams}, ${D} s each; CPU of every process:`,
  ...Object.keys(results.rounds).map((label) => {
    const rs = results.rounds[label];
    return (
      `  ${label.padEnd(28)} ${String(Math.round(med(label))).padStart(7)}/s  [${rs.map((r) => r.perSec).join(', ')}]  ` +
      `server ${med(label, 'serverCores')} cores ${med(label, 'serverUsPerCall')} µs/call; h2load ${med(label, 'generatorCores')}, ` +
      `redis ${med(label, 'redisCores')}, other ${med(label, 'otherCores')} cores; RSS ${rs.at(-1).rssEachMiB.join(' + ')} MiB`
    );
  }),
  ...(Object.keys(results.latency).length
    ? [
        `tail at ${values.rate} calls/s, open loop from ${openloopBin ? 'the Go client (go-anchor/openloop)' : 'the Node client (openloop.js)'}, median of ${values['latency-rounds']} rounds:`,
        ...Object.keys(results.latency).map(
          (n) =>
            `  ${n.padEnd(12)} p50 ${latMed(n, 'p50')} / p99 ${latMed(n, 'p99')} / p99.9 ${latMed(n, 'p999')} ms` +
            `${n === 'redis' ? '' : `  server ${latMed(n, 'serverUsPerCall')} µs/call`}; client ${latMed(n, 'clientCpuSec')} s CPU; other ${latMed(n, 'otherCores')} cores`,
        ),
      ]
    : []),
  ...MSG_BACKENDS.flatMap((b) =>
    ['stream', 'go', 'raw']
      .filter((k) => results.messaging[b]?.[k])
      .map(
        (k) =>
          `publish→consume ${b.padEnd(5)} ${k.padEnd(6)} ${msgMed(b, k)} msg/s [${(results.messaging[b]?.[k] ?? []).map((c) => c.rate).join(', ')}]  ` +
          `proxy ${msgMed(b, k, 'proxyCpuPerMsgUs')} µs/msg, client ${msgMed(b, k, 'clientCpuPerMsgUs')} µs/msg`,
      ),
  ),
  '',
  'goal                                                      value     goal     result   note',
  ...goals.map(
    (g) =>
      `${g.what.padEnd(57)} ${String(g.value).padStart(7)}   ${g.goal.padEnd(7)}  ${(g.met === null ? '—' : g.met ? 'met' : 'MISSED').padEnd(7)}  ${g.note}`,
  ),
];
console.log(lines.join('\n'));
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
