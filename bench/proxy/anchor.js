#!/usr/bin/env node
// Benchmark (not a test): the Prism proxy's unary KeyValue path against its yardsticks, in one run
// with the contenders interleaved round by round (issue "Data-plane performance"):
//   - the Go anchor: a minimal grpc-go → go-redis proxy (bench/proxy/go-anchor), built when a Go
//     toolchain exists, into a cache directory (never committed);
//   - a minimal grpc-js → ioredis proxy (bench/proxy/minimal-proxy.js), 1 worker;
//   - prismctl proxy serve with 1 worker and with all cores (--workers <cores>);
//   - direct Redis (ioredis, auto-pipelining): GET at a fixed rate and MGET of 100 keys.
// Load: h2load with pre-encoded gRPC bodies (KeyValue Get, BatchGet of 100 keys); latency: the
// open-loop node:http2 client of openloop.js at a fixed rate. Prints the ratios, the CPU of every
// process and the RSS of every worker. Everything listens on 127.0.0.1.
//   npm run build && node bench/proxy/anchor.js [--rounds 3] [--duration 6] [--json out.json]
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { URL } from 'node:url';
import { parseArgs } from 'node:util';
import { create, toBinary } from '@bufbuild/protobuf';
import { DataClient } from '../../dist/client/data-client.js';
import { BatchGetRequestSchema, GetRequestSchema } from '../../dist/gen/prism/data/v1/keyvalue_pb.js';
import {
  BENCH,
  ROOT,
  cpuSeconds,
  grpcFrame,
  loadAverage,
  machine,
  measured,
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
    'batch-keys': { type: 'string', default: '100' },
    'value-size': { type: 'string', default: '100' },
    'semi-space': { type: 'string', default: '' },
    // A/B: a copy of the package (bin/, dist/, package.json, oclif.manifest.json, node_modules) to
    // run as "prism w1 baseline" beside this tree's prism w1.
    baseline: { type: 'string' },
    'baseline-semi-space': { type: 'string', default: '' },
    // Leave out what an A/B run does not need.
    only: { type: 'string' },
    methods: { type: 'string', default: 'Get,BatchGet' },
    json: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const D = Number(values.duration);
const WARM = Number(values.warmup);
const C = Number(values.connections);
const M = Number(values.streams);
const CORES = availableParallelism();
const NS = 'bench-kv';
// The Prism redis driver's key prefix of the namespace's keyvalue pattern `cache`.
const KEY_PREFIX = 'keyvalue/cache/';
const BATCH = Number(values['batch-keys']);
const METHODS = new Set(values.methods.split(','));
const redisUrl = process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const node = process.execPath;
const log = (...a) => console.error(`[anchor ${new Date().toISOString().slice(11, 19)}]`, ...a);
const results = {
  command: `node bench/proxy/anchor.js ${process.argv.slice(2).join(' ')}`.trim(),
  machine: machine(),
  loadBefore: loadAverage(),
  startedAt: new Date().toISOString(),
  rounds: {},
  latency: {},
};

// ---- inputs -------------------------------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'prism-bench-anchor-'));
const kvDir = join(work, 'ns');
mkdirSync(kvDir);
writeFileSync(
  join(kvDir, 'kv.yaml'),
  `namespace: ${NS}\nteam: bench\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n`,
);
const backends = join(work, 'backends.yaml');
writeFileSync(backends, `backends:\n  redis:\n    - { name: bench, endpoint: ${redisUrl} }\n`);
const batchKeys = Array.from({ length: BATCH }, (_, i) => `b${i}`);
const bodies = {
  Get: grpcFrame(toBinary(GetRequestSchema, create(GetRequestSchema, { key: 'k' }))),
  BatchGet: grpcFrame(toBinary(BatchGetRequestSchema, create(BatchGetRequestSchema, { keys: batchKeys }))),
};
for (const [m, body] of Object.entries(bodies)) writeFileSync(join(work, `${m}.bin`), body);

// ---- the Go anchor ------------------------------------------------------------------------------
function goBinary() {
  const go = ['/usr/local/go/bin/go', ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'go'))].find(
    (p) => existsSync(p),
  );
  return go;
}

/** Builds bench/proxy/go-anchor into the cache unless the binary there is newer than its sources. */
async function buildAnchor() {
  const go = goBinary();
  if (!go) return undefined;
  const src = join(BENCH, 'go-anchor');
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'prism-bench');
  mkdirSync(cache, { recursive: true });
  const bin = join(cache, 'go-anchor');
  const newest = Math.max(...readdirSync(src).map((f) => statSync(join(src, f)).mtimeMs));
  if (!existsSync(bin) || statSync(bin).mtimeMs < newest) {
    log(`building the Go anchor with ${go} (first time: module downloads and a few minutes)`);
    const built = await runProcess(go, ['build', '-o', bin, '.'], {
      timeoutMs: 900_000,
      cwd: src,
      env: { GOFLAGS: '-mod=mod' },
    });
    if (built.code !== 0) throw new Error(`go build failed: ${built.stderr}`);
  }
  const version = await runProcess(go, ['version']);
  results.machine.go = version.stdout.trim();
  return bin;
}

// ---- processes ----------------------------------------------------------------------------------
function redisPid() {
  const port = new URL(redisUrl).port || '6379';
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.startsWith('redis-server') && cmd.includes(`:${port}`)) return Number(pid);
    } catch {
      // gone
    }
  }
  return undefined;
}

const prismProxy =
  (workers, root = ROOT, semiSpace = values['semi-space']) =>
  async () => {
    const p = await startProcess(
      node,
      [
        join(root, 'bin/run.js'),
        'proxy',
        'serve',
        '--namespaces',
        kvDir,
        '--backends',
        backends,
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
        '--workers',
        String(workers),
      ],
      workers > 1 ? 'prism proxy cluster serving' : 'prism proxy serving',
      {
        env: {
          PRISM_HOME: join(work, 'home'),
          ...(semiSpace ? { NODE_OPTIONS: `--max-semi-space-size=${semiSpace}` } : {}),
        },
        timeoutMs: 90_000,
      },
    );
    return { ...p, port: p.ready.port, pid: p.child.pid };
  };

const benchServer = (cmd, args) => async () => {
  const p = await startProcess(cmd, args, 'bench server ready', { timeoutMs: 60_000 });
  return { ...p, port: p.ready.port, pid: p.child.pid };
};

// ---- load ---------------------------------------------------------------------------------------
async function h2load(port, method, seconds) {
  const args = [
    '-c',
    String(C),
    '-m',
    String(M),
    '-t',
    '1',
    '-D',
    String(seconds),
    '-d',
    join(work, `${method}.bin`),
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    '-H',
    `x-prism-namespace: ${NS}`,
    `http://127.0.0.1:${port}/prism.data.v1.KeyValue/${method}`,
  ];
  const { code, stdout, stderr } = await runProcess(
    'sh',
    ['-c', 'h2load "$@"; rc=$?; times; exit $rc', 'h2load', ...args],
    { timeoutMs: (seconds + 30) * 1000 },
  );
  if (code !== 0) throw new Error(`h2load failed (${code}): ${stderr}\n${stdout}`);
  const num = (re) => Number(re.exec(stdout)?.[1] ?? NaN);
  const secs = (
    stdout
      .trim()
      .split('\n')
      .slice(-1)[0]
      .match(/(\d+)m([\d.]+)s/g) ?? []
  ).map((t) => {
    const [, m, s] = /(\d+)m([\d.]+)s/.exec(t);
    return Number(m) * 60 + Number(s);
  });
  return {
    perSec: num(/finished in [\d.]+m?s, ([\d.]+) req\/s/),
    seconds: num(/finished in ([\d.]+)s/),
    succeeded: num(/(\d+) succeeded/),
    failed: num(/(\d+) failed/) + num(/(\d+) errored/),
    generatorCpu: secs.length >= 2 ? secs[0] + secs[1] : NaN,
  };
}

/** One measured phase: `load()` returns { perSec, seconds, succeeded, generatorCpu? }. */
async function phase(label, pid, load) {
  const rpid = redisPid();
  const r0 = rpid ? cpuSeconds([rpid]) : 0;
  const m = await measured(pid, load);
  const redisCpu = rpid ? cpuSeconds([rpid]) - r0 : 0;
  const r = m.result;
  const cpu = r.clientCpu ?? m.cpu; // direct Redis: the client's own CPU
  const out = {
    perSec: Math.round(r.perSec),
    failed: r.failed ?? 0,
    serverCores: +(cpu / r.seconds).toFixed(2),
    serverUsPerCall: +((cpu * 1e6) / r.succeeded).toFixed(1),
    generatorCores: +((r.generatorCpu ?? 0) / r.seconds).toFixed(2),
    redisCores: +(redisCpu / r.seconds).toFixed(2),
    otherCores: +((m.machineBusy - cpu - (r.generatorCpu ?? 0) - redisCpu) / r.seconds).toFixed(2),
    rssEachMiB: m.rssEachMiB.map((x) => +x.toFixed(1)),
  };
  (results.rounds[label] ??= []).push(out);
  log(
    `${label.padEnd(24)} ${String(out.perSec).padStart(7)}/s fail ${out.failed}  server ${out.serverCores} cores ` +
      `(${out.serverUsPerCall} µs/call)  h2load ${out.generatorCores}  redis ${out.redisCores}  other ${out.otherCores}  ` +
      `RSS ${out.rssEachMiB.join(' + ')} MiB`,
  );
  return out;
}

async function redisLoad(mget) {
  const { code, stdout, stderr } = await runProcess(
    node,
    [
      join(BENCH, 'redis-load.js'),
      '--url',
      redisUrl,
      '--key',
      mget ? `${NS}:${KEY_PREFIX}b` : `${NS}:${KEY_PREFIX}k`,
      '--duration',
      String(D),
      '--warmup',
      '1',
      '--autopipelining',
      ...(mget ? ['--mget', String(mget)] : []),
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
    generatorCpu: 0,
    clientCpu: r.clientCpuSec,
  };
}

async function openLoop(args) {
  const { code, stdout, stderr } = await runProcess(
    node,
    [join(BENCH, 'openloop.js'), '--rate', values.rate, '--duration', values['latency-duration'], ...args],
    { timeoutMs: (Number(values['latency-duration']) + 30) * 1000 },
  );
  if (code !== 0) throw new Error(`openloop failed: ${stderr}`);
  return JSON.parse(stdout.trim().split('\n').pop());
}

// ---- run ----------------------------------------------------------------------------------------
log(`machine ${JSON.stringify(results.machine)}; load average ${results.loadBefore}`);
const anchorBin = await buildAnchor();
if (!anchorBin) log('no Go toolchain: the Go anchor is left out of this run');

const servers = {};
const stops = [];
try {
  const starts = {
    [`prism w${CORES}`]: prismProxy(CORES),
    'prism w1': prismProxy(1),
    'minimal grpc-js w1': benchServer(node, [
      join(BENCH, 'minimal-proxy.js'),
      '--redis',
      redisUrl,
      '--key-prefix',
      KEY_PREFIX,
    ]),
    ...(anchorBin
      ? { 'go anchor': benchServer(anchorBin, ['-redis', redisUrl, '-key-prefix', KEY_PREFIX]) }
      : {}),
    ...(values.baseline
      ? { 'prism w1 baseline': prismProxy(1, values.baseline, values['baseline-semi-space']) }
      : {}),
  };
  // --only a,b: keep only these contenders (prism w1 always: it seeds the keys).
  if (values.only) {
    const keep = new Set([...values.only.split(','), 'prism w1']);
    for (const name of Object.keys(starts)) if (!keep.has(name)) delete starts[name];
  }
  for (const [name, start] of Object.entries(starts)) {
    servers[name] = await start();
    stops.push(servers[name].stop);
  }
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
  // Warm every server up once.
  for (const s of Object.values(servers)) {
    await h2load(s.port, 'Get', WARM);
    await h2load(s.port, 'BatchGet', WARM);
  }

  // Throughput, interleaved: every contender once per round.
  for (let round = 1; round <= ROUNDS; round++) {
    log(`round ${round}/${ROUNDS}; load average ${loadAverage()}`);
    if (METHODS.has('Get'))
      for (const [name, s] of Object.entries(servers))
        await phase(`${name} Get`, s.pid, () => h2load(s.port, 'Get', D));
    if (METHODS.has('BatchGet')) {
      for (const [name, s] of Object.entries(servers))
        await phase(`${name} BatchGet`, s.pid, () => h2load(s.port, 'BatchGet', D));
      await phase(`ioredis MGET ${BATCH}`, -1, () => redisLoad(BATCH));
    }
  }

  // Latency at a fixed rate, interleaved: direct Redis, prism (1 worker), the Go anchor.
  const getBody = bodies.Get.toString('base64');
  const latencyTargets = {
    redis: ['--target', 'redis', '--url', redisUrl, '--key', `${NS}:${KEY_PREFIX}k`],
  };
  for (const name of ['prism w1', 'go anchor', 'prism w1 baseline'].filter((n) => servers[n]))
    latencyTargets[name] = [
      '--target',
      'grpc',
      '--port',
      String(servers[name].port),
      '--namespace',
      NS,
      '--body',
      getBody,
    ];
  for (let round = 1; round <= Number(values['latency-rounds']); round++) {
    for (const [name, args] of Object.entries(latencyTargets)) {
      const r = await openLoop(args);
      (results.latency[name] ??= []).push(r);
      log(
        `latency @${values.rate}/s ${name.padEnd(10)} p50 ${r.p50}  p99 ${r.p99}  p99.9 ${r.p999}  max ${r.max} ms  errors ${r.errors}`,
      );
    }
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
}

// ---- summary ------------------------------------------------------------------------------------
results.loadAfter = loadAverage();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const med = (label, field = 'perSec') =>
  +median((results.rounds[label] ?? []).map((r) => r[field])).toFixed(2);
const ratio = (a, b) => +(a / b).toFixed(2);
const latMed = (name, p) => +median((results.latency[name] ?? []).map((r) => r[p])).toFixed(3);
const added = (name, p) => +(latMed(name, p) - latMed('redis', p)).toFixed(2);
const prismAll = `prism w${CORES}`;
results.summary = {
  prismAllCoresOverGo:
    servers['go anchor'] && servers[`prism w${CORES}`]
      ? ratio(med(`${prismAll} Get`), med('go anchor Get'))
      : null,
  prismW1OverMinimalGrpcJs: ratio(med('prism w1 Get'), med('minimal grpc-js w1 Get')),
  ...(values.baseline
    ? {
        prismW1OverBaseline: ratio(med('prism w1 Get'), med('prism w1 baseline Get')),
        prismW1CpuPerCallOverBaseline: ratio(
          med('prism w1 Get', 'serverUsPerCall'),
          med('prism w1 baseline Get', 'serverUsPerCall'),
        ),
      }
    : {}),
  addedOverRedis: Object.fromEntries(
    Object.keys(results.latency)
      .filter((n) => n !== 'redis')
      .map((n) => [n, { p50: added(n, 'p50'), p99: added(n, 'p99'), p999: added(n, 'p999') }]),
  ),
  batchGetOverMget: {
    prismW1: ratio(med('prism w1 BatchGet'), med(`ioredis MGET ${BATCH}`)),
    [prismAll]: ratio(med(`${prismAll} BatchGet`), med(`ioredis MGET ${BATCH}`)),
    ...(anchorBin ? { goAnchor: ratio(med('go anchor BatchGet'), med(`ioredis MGET ${BATCH}`)) } : {}),
  },
};
const s = results.summary;
const lines = [
  '',
  `== bench/proxy anchor (${CORES} cores, ${results.machine.model}; load ${results.loadBefore} → ${results.loadAfter}) ==`,
  `median of ${ROUNDS} interleaved rounds, h2load -c ${C} -m ${M}, ${D} s each:`,
  ...Object.keys(results.rounds).map((label) => {
    const rs = results.rounds[label];
    const last = rs[rs.length - 1];
    return (
      `  ${label.padEnd(24)} ${String(Math.round(med(label))).padStart(7)}/s  [${rs.map((r) => r.perSec).join(', ')}]  ` +
      `server ${med(label, 'serverCores')} cores ${med(label, 'serverUsPerCall')} µs/call; h2load ${med(label, 'generatorCores')}, ` +
      `redis ${med(label, 'redisCores')}, other ${med(label, 'otherCores')} cores; RSS ${last.rssEachMiB.join(' + ')} MiB`
    );
  }),
  `prism (${CORES} workers) ÷ Go anchor, Get:           ${s.prismAllCoresOverGo ?? 'no Go toolchain'}   (goal ≥ 0.7)`,
  `prism 1 worker ÷ minimal grpc-js proxy, Get:   ${s.prismW1OverMinimalGrpcJs}   (goal ≥ 0.95)`,
  ...(values.baseline
    ? [
        `prism w1 ÷ baseline w1, Get: calls/s ${s.prismW1OverBaseline}, CPU per call ${s.prismW1CpuPerCallOverBaseline}`,
      ]
    : []),
  `BatchGet of ${BATCH} keys ÷ ioredis MGET of them: prism w1 ${s.batchGetOverMget.prismW1}, prism w${CORES} ${s.batchGetOverMget[prismAll]}${anchorBin ? `, Go ${s.batchGetOverMget.goAnchor}` : ''}   (goal ≥ 0.8)`,
  `at ${values.rate} calls/s (median of ${values['latency-rounds']} rounds): redis p50 ${latMed('redis', 'p50')} / p99 ${latMed('redis', 'p99')} / p99.9 ${latMed('redis', 'p999')} ms`,
  ...Object.entries(s.addedOverRedis).map(
    ([n, a]) =>
      `  ${n.padEnd(10)} added +${a.p50} / +${a.p99} / +${a.p999} ms   (goal for prism ≤ +0.5 / +3 / +8)`,
  ),
];
console.log(lines.join('\n'));
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
