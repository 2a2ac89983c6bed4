#!/usr/bin/env node
// Benchmark (not a test): the unary path through an in-process runner next to the same path through
// a runner process the proxy launched (isolation: namespace, gRPC over a Unix socket), issue #17.
// One `prismctl proxy serve --workers 1` serves two namespaces that differ only in `isolation`; the
// contenders are measured in the same run, interleaved round by round:
//   - throughput: h2load with pre-encoded gRPC bodies (KeyValue Get, Set; Producer PublishBatch);
//   - latency: at a fixed rate, open loop, from the Go client go-anchor/openloop (as goals.js; built
//     when a Go toolchain is found, else --latency-client node: the node:http2 client of openloop.js).
// Beside them, the floor under the launched path's added p50: the same Go client GETs the seeded key
// from Redis directly and through a process that only relays bytes from a Unix socket (relay.js in
// Node, go-anchor/relay in Go), so the print says what one extra process hop costs on this machine
// when the hop does no work at all.
// Per phase it prints calls/s and the CPU (cores, µs per call) and peak RSS of every process: the
// proxy, the launched runner, Redis, h2load, and everything else on the machine ("other").
// Everything listens on 127.0.0.1.
//   npm run build && node bench/proxy/launched.js [--rounds 3] [--duration 6] [--json out.json]
/* global fetch */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { join } from 'node:path';
import { URL } from 'node:url';
import { parseArgs } from 'node:util';
import { create, toBinary } from '@bufbuild/protobuf';
import { DataClient } from '../../dist/client/data-client.js';
import { GetRequestSchema, SetRequestSchema } from '../../dist/gen/prism/data/v1/keyvalue_pb.js';
import { PublishBatchRequestSchema } from '../../dist/gen/prism/data/v1/messaging_pb.js';
import {
  BENCH,
  buildGo,
  cpuSeconds,
  grpcFrame,
  loadAverage,
  h2load,
  machine,
  machineBusySeconds,
  prismRedisKey,
  processTree,
  redisPid,
  rssMiB,
  runProcess,
  startProcess,
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
    'value-size': { type: 'string', default: '100' },
    'batch-size': { type: 'string', default: '10' },
    methods: { type: 'string', default: 'Get,Set,PublishBatch' },
    'latency-client': { type: 'string', default: 'go' },
    json: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const D = Number(values.duration);
const WARM = Number(values.warmup);
const C = Number(values.connections);
const M = Number(values.streams);
const METHODS = values.methods.split(',');
const redisUrl = process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const node = process.execPath;
const log = (...a) => console.error(`[launched ${new Date().toISOString().slice(11, 19)}]`, ...a);

// The two contenders: namespaces that differ only in where their runners run.
const CONTENDERS = { 'in-process': 'bench-inproc', launched: 'bench-launched' };
const SERVICE = { Get: 'KeyValue', Set: 'KeyValue', PublishBatch: 'Producer' };
const results = {
  command: `node bench/proxy/launched.js ${process.argv.slice(2).join(' ')}`.trim(),
  machine: machine(),
  loadBefore: loadAverage(),
  startedAt: new Date().toISOString(),
  rounds: {},
  latency: {},
  /** The Go client's Redis GET, direct and through byte relays (one extra process hop, no work). */
  hopFloor: {},
};

// ---- inputs -------------------------------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'prism-bench-launched-'));
const nsDir = join(work, 'ns');
mkdirSync(nsDir);
const topic = `bench-launched-${process.pid}`;
for (const [name, ns] of Object.entries(CONTENDERS))
  writeFileSync(
    join(nsDir, `${ns}.yaml`),
    [
      `namespace: ${ns}`,
      'team: bench',
      `isolation: ${name === 'launched' ? 'namespace' : 'none'}`,
      'patterns:',
      '  - { name: cache, type: keyvalue, slots: { store: { backend: redis } } }',
      `  - { name: events, type: producer, slots: { sink: { backend: redis } }, settings: { topic: ${topic} } }`,
      '',
    ].join('\n'),
  );
const backends = join(work, 'backends.yaml');
writeFileSync(backends, `backends:\n  redis:\n    - { name: bench, endpoint: ${redisUrl} }\n`);
const value = new Uint8Array(Number(values['value-size'])).fill(120);
const messages = {
  Get: toBinary(GetRequestSchema, create(GetRequestSchema, { key: 'k' })),
  Set: toBinary(SetRequestSchema, create(SetRequestSchema, { key: 's', value })),
  PublishBatch: toBinary(
    PublishBatchRequestSchema,
    create(PublishBatchRequestSchema, {
      messages: Array.from({ length: Number(values['batch-size']) }, () => ({
        payload: value,
        contentType: 'application/octet-stream',
      })),
    }),
  ),
};
const bodies = Object.fromEntries(Object.entries(messages).map(([m, bytes]) => [m, grpcFrame(bytes)]));
for (const [m, body] of Object.entries(bodies)) writeFileSync(join(work, `${m}.bin`), body);

// ---- load ---------------------------------------------------------------------------------------
function load(port, ns, method, seconds) {
  return h2load({
    port,
    path: `/prism.data.v1.${SERVICE[method]}/${method}`,
    bodyFile: join(work, `${method}.bin`),
    namespace: ns,
    seconds,
    connections: C,
    streams: M,
  });
}

/** The proxy's and the runner's pids; everything below the proxy but the runner is the proxy's. */
function processes(proxyPid, runnerPid) {
  const tree = processTree(proxyPid).filter((p) => !processTree(runnerPid).includes(p));
  return { proxy: tree, runner: processTree(runnerPid), redis: [redisPid(redisUrl)].filter(Boolean) };
}

/** One measured throughput phase: CPU of every process, peak RSS of the proxy and the runner. */
async function phase(label, procs, load) {
  const cpu0 = Object.fromEntries(Object.entries(procs).map(([k, pids]) => [k, cpuSeconds(pids)]));
  const busy0 = machineBusySeconds();
  const peak = { proxy: 0, runner: 0 };
  const sample = () => {
    for (const k of ['proxy', 'runner'])
      peak[k] = Math.max(
        peak[k],
        rssMiB(procs[k]).reduce((a, b) => a + b, 0),
      );
  };
  const timer = setInterval(sample, 250);
  let r;
  try {
    r = await load();
    sample();
  } finally {
    clearInterval(timer);
  }
  const cpu = Object.fromEntries(Object.entries(procs).map(([k, pids]) => [k, cpuSeconds(pids) - cpu0[k]]));
  const busy = machineBusySeconds() - busy0;
  const cores = (s) => +(s / r.seconds).toFixed(2);
  const out = {
    perSec: Math.round(r.perSec),
    proxyCores: cores(cpu.proxy),
    runnerCores: cores(cpu.runner),
    usPerCall: +(((cpu.proxy + cpu.runner) * 1e6) / r.succeeded).toFixed(1),
    generatorCores: cores(r.generatorCpu),
    redisCores: cores(cpu.redis),
    otherCores: cores(busy - cpu.proxy - cpu.runner - cpu.redis - r.generatorCpu),
    proxyRssMiB: +peak.proxy.toFixed(1),
    runnerRssMiB: +peak.runner.toFixed(1),
  };
  (results.rounds[label] ??= []).push(out);
  log(
    `${label.padEnd(24)} ${String(out.perSec).padStart(7)}/s  proxy ${out.proxyCores} + runner ${out.runnerCores} cores ` +
      `(${out.usPerCall} µs/call)  h2load ${out.generatorCores}  redis ${out.redisCores}  other ${out.otherCores}  ` +
      `RSS proxy ${out.proxyRssMiB} runner ${out.runnerRssMiB} MiB`,
  );
}

async function openLoop(port, ns, method) {
  const path = `/prism.data.v1.${SERVICE[method]}/${method}`;
  const [cmd, args] = openloopBin
    ? [
        openloopBin,
        [
          ...['-rate', values.rate, '-duration', values['latency-duration'], '-target', 'grpc'],
          ...['-addr', `127.0.0.1:${port}`, '-namespace', ns, '-path', path],
          ...['-body', Buffer.from(messages[method]).toString('base64')],
        ],
      ]
    : [
        node,
        [
          join(BENCH, 'openloop.js'),
          ...['--rate', values.rate, '--duration', values['latency-duration'], '--target', 'grpc'],
          ...['--port', String(port), '--namespace', ns, '--body', bodies[method].toString('base64')],
          ...['--path', path],
        ],
      ];
  const { code, stdout, stderr } = await runProcess(cmd, args, {
    timeoutMs: (Number(values['latency-duration']) + 30) * 1000,
  });
  if (code !== 0) throw new Error(`openloop failed: ${stderr}`);
  return JSON.parse(stdout.trim().split('\n').pop());
}

/** The Go client's GET of the seeded key from Redis at `url` (direct or through a relay). */
async function openLoopRedis(url) {
  const key = prismRedisKey(CONTENDERS['in-process'], 'cache', 'k');
  const args = ['-rate', values.rate, '-duration', values['latency-duration'], '-target', 'redis'];
  const { code, stdout, stderr } = await runProcess(openloopBin, [...args, '-redis', url, '-key', key], {
    timeoutMs: (Number(values['latency-duration']) + 30) * 1000,
  });
  if (code !== 0) throw new Error(`openloop failed: ${stderr}`);
  return JSON.parse(stdout.trim().split('\n').pop());
}

/** Byte relays from a Unix socket to Redis, in Node and (when built) in Go: the hop floor's contenders. */
async function startRelays() {
  const to = `${new URL(redisUrl).hostname}:${new URL(redisUrl).port || '6379'}`;
  const relays = [['node relay', node, [join(BENCH, 'relay.js')]]];
  const goRelay = await buildGo('./relay', 'go-relay', log);
  if (goRelay) relays.push(['go relay', goRelay, []]);
  const started = [];
  for (const [label, cmd, args] of relays) {
    const socket = join(work, `${label.replace(' ', '-')}.sock`);
    const proc = await startProcess(cmd, [...args, '--listen', socket, '--to', to], 'bench relay ready');
    started.push({ label, url: `unix://${socket}`, proc });
  }
  return started;
}

/** prism_proxy_requests_total by namespace, method and code (h2load counts any HTTP 200 as success). */
async function proxyCodes(httpPort) {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const codes = {};
  for (const m of text.matchAll(/^prism_proxy_requests_total\{([^}]*)\} (\d+)/gm)) {
    const label = (k) => new RegExp(`${k}="([^"]*)"`).exec(m[1])?.[1];
    codes[`${label('namespace')} ${label('method')} ${label('code')}`] = Number(m[2]);
  }
  return codes;
}

// ---- run ----------------------------------------------------------------------------------------
log(`machine ${JSON.stringify(results.machine)}; load average ${results.loadBefore}`);
const openloopBin =
  values['latency-client'] === 'go' && Number(values['latency-rounds']) > 0
    ? await buildGo('./openloop', 'go-openloop', log)
    : undefined;
results.latencyClient = openloopBin ? 'go-anchor/openloop (Go)' : 'openloop.js (node:http2)';
if (values['latency-client'] === 'go' && !openloopBin && Number(values['latency-rounds']) > 0)
  log('no Go toolchain: the tail is measured with the Node client (openloop.js)');
const proxy = await startProcess(
  node,
  [
    join(BENCH, '../../bin/run.js'),
    ...['proxy', 'serve', '--namespaces', nsDir, '--backends', backends],
    ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--workers', '1'],
  ],
  'prism proxy serving',
  { env: { PRISM_HOME: join(work, 'home') }, timeoutMs: 90_000 },
);
try {
  const { port, httpPort } = proxy.ready;
  // The proxy reports ready before its namespaces' runners have started (they start in parallel).
  let runners = [];
  let runner;
  for (const until = Date.now() + 30_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
    runners = (await (await fetch(`http://127.0.0.1:${httpPort}/runners`)).json()).runners;
    runner = runners.find((r) => r.namespace === CONTENDERS.launched);
    if (runner?.state === 'serving') break;
  }
  if (!runner || runner.state !== 'serving' || runners.length !== 1)
    throw new Error(`expected one launched runner of ${CONTENDERS.launched}: ${JSON.stringify(runners)}`);
  const procs = processes(proxy.child.pid, runner.pid);
  log(`proxy pid ${proxy.child.pid}, launched runner pid ${runner.pid} (${runner.patterns.join(', ')})`);

  // Seed and check each contender answers with a real client.
  for (const ns of Object.values(CONTENDERS)) {
    const client = new DataClient(`127.0.0.1:${port}`, { namespace: ns, timeoutMs: 5000 });
    try {
      await client.set('k', value);
      const got = await client.get('k');
      if (!got.found || got.value.length !== value.length)
        throw new Error(`${ns}: Get did not return the value`);
    } finally {
      client.close();
    }
  }
  for (const [, ns] of Object.entries(CONTENDERS))
    for (const method of METHODS) await load(port, ns, method, WARM);

  for (let round = 1; round <= ROUNDS; round++) {
    log(`round ${round}/${ROUNDS}; load average ${loadAverage()}`);
    for (const method of METHODS)
      for (const [name, ns] of Object.entries(CONTENDERS))
        await phase(`${name} ${method}`, procs, () => load(port, ns, method, D));
  }
  for (let round = 1; round <= Number(values['latency-rounds']); round++) {
    for (const method of METHODS.filter((m) => m !== 'PublishBatch'))
      for (const [name, ns] of Object.entries(CONTENDERS)) {
        const r = await openLoop(port, ns, method);
        (results.latency[`${name} ${method}`] ??= []).push(r);
        log(
          `latency @${values.rate}/s ${`${name} ${method}`.padEnd(18)} p50 ${r.p50}  p99 ${r.p99}  p99.9 ${r.p999}  max ${r.max} ms  errors ${r.errors}`,
        );
      }
  }
  if (openloopBin && Number(values['latency-rounds']) > 0) {
    const relays = await startRelays();
    try {
      for (let round = 1; round <= Number(values['latency-rounds']); round++)
        for (const [label, url] of [['redis direct', redisUrl], ...relays.map((r) => [r.label, r.url])]) {
          const r = await openLoopRedis(url);
          (results.hopFloor[label] ??= []).push(r);
          log(`latency @${values.rate}/s ${label.padEnd(18)} p50 ${r.p50}  p99 ${r.p99}  p99.9 ${r.p999} ms`);
        }
    } finally {
      await Promise.all(relays.map((r) => r.proc.stop()));
    }
  }
  results.codes = await proxyCodes(httpPort);
  results.runnerAfter = (await (await fetch(`http://127.0.0.1:${httpPort}/runners`)).json()).runners;
} finally {
  await proxy.stop();
}

// ---- summary ------------------------------------------------------------------------------------
results.loadAfter = loadAverage();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const med = (label, field = 'perSec') =>
  +median((results.rounds[label] ?? []).map((r) => r[field])).toFixed(2);
const lat = (label, p) => +median((results.latency[label] ?? []).map((r) => r[p])).toFixed(3);
results.summary = Object.fromEntries(
  METHODS.map((m) => [
    m,
    {
      throughputRatio: +(med(`launched ${m}`) / med(`in-process ${m}`)).toFixed(2),
      cpuPerCallRatio: +(med(`launched ${m}`, 'usPerCall') / med(`in-process ${m}`, 'usPerCall')).toFixed(2),
      ...(results.latency[`launched ${m}`]
        ? {
            addedP50Ms: +(lat(`launched ${m}`, 'p50') - lat(`in-process ${m}`, 'p50')).toFixed(3),
            addedP99Ms: +(lat(`launched ${m}`, 'p99') - lat(`in-process ${m}`, 'p99')).toFixed(3),
          }
        : {}),
    },
  ]),
);
const floor = (label, p) => +median((results.hopFloor[label] ?? []).map((r) => r[p])).toFixed(3);
results.hopFloorAddedP50Ms = Object.fromEntries(
  Object.keys(results.hopFloor)
    .filter((label) => label !== 'redis direct')
    .map((label) => [label, +(floor(label, 'p50') - floor('redis direct', 'p50')).toFixed(3)]),
);
const failures = Object.entries(results.codes ?? {}).filter(([k]) => !k.endsWith(' OK'));
const lines = [
  '',
  `== bench/proxy launched (${results.machine.cores} cores, ${results.machine.model}; load ${results.loadBefore} → ${results.loadAfter}) ==`,
  `median of ${ROUNDS} interleaved rounds, h2load -c ${C} -m ${M}, ${D} s each (PublishBatch: ${values['batch-size']} messages per call):`,
  ...Object.keys(results.rounds).map((label) => {
    const rs = results.rounds[label];
    return (
      `  ${label.padEnd(24)} ${String(Math.round(med(label))).padStart(7)}/s  [${rs.map((r) => r.perSec).join(', ')}]  ` +
      `proxy ${med(label, 'proxyCores')} + runner ${med(label, 'runnerCores')} cores, ${med(label, 'usPerCall')} µs/call; ` +
      `h2load ${med(label, 'generatorCores')}, redis ${med(label, 'redisCores')}, other ${med(label, 'otherCores')} cores; ` +
      `RSS proxy ${med(label, 'proxyRssMiB')} runner ${med(label, 'runnerRssMiB')} MiB`
    );
  }),
  `at ${values.rate} calls/s, open loop from ${results.latencyClient} (median of ${values['latency-rounds']} rounds), p50 / p99 / p99.9 ms:`,
  ...Object.keys(results.latency).map(
    (label) => `  ${label.padEnd(24)} ${lat(label, 'p50')} / ${lat(label, 'p99')} / ${lat(label, 'p999')}`,
  ),
  'launched ÷ in-process (goal: throughput ≥ 0.7, p50 ≤ +0.15 ms):',
  ...Object.entries(results.summary).map(
    ([m, s]) =>
      `  ${m.padEnd(13)} throughput ${s.throughputRatio}, CPU per call ${s.cpuPerCallRatio}` +
      (s.addedP50Ms !== undefined ? `, p50 +${s.addedP50Ms} ms, p99 +${s.addedP99Ms} ms` : ''),
  ),
  ...(Object.keys(results.hopFloor).length
    ? [
        `the floor: one extra process hop that only relays bytes (Unix socket → Redis), Go client GET at ${values.rate}/s, p50 / p99 ms:`,
        ...Object.keys(results.hopFloor).map(
          (label) =>
            `  ${label.padEnd(24)} ${floor(label, 'p50')} / ${floor(label, 'p99')}` +
            (label === 'redis direct' ? '' : `   (p50 +${results.hopFloorAddedP50Ms[label]} ms over direct)`),
        ),
      ]
    : []),
  failures.length
    ? `non-OK calls: ${JSON.stringify(Object.fromEntries(failures))}`
    : 'every call answered OK',
];
console.log(lines.join('\n'));
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
