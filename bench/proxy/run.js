#!/usr/bin/env node
// Benchmark (not a test) of the Prism proxy against its floors, in one run:
//   - direct ioredis GET, concurrency 64, without and with auto-pipelining;
//   - a bare KeyValue echo server (the transport ceiling) on @grpc/grpc-js and on connect-node;
//   - the Prism proxy (prismctl proxy serve, grpc-js) doing KeyValue Get and Set on Redis, with
//     1 and 2 workers, in plaintext and over TLS (--tls-cert/--tls-key, a CA made for the run),
//     and the same routing + runner + driver path on connect-node;
//   - latency at a fixed 1,000 ops/s: direct ioredis vs through the proxy, plaintext and TLS (open loop);
//   - publish → consume through the proxy on NATS and on Kafka (bounded).
// Throughput is driven by h2load (Debian's nghttp2-client; bench/proxy/setup.sh installs it) with
// prebuilt gRPC-framed request bodies, so the generator is not the ceiling; its CPU is printed.
// Everything listens on 127.0.0.1. Every phase is bounded in time and count.
//   npm run build && bash scripts/test-services.sh up redis nats kafka
//   node bench/proxy/run.js [--duration 8] [--json out.json] [--skip-messaging]
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { create, toBinary } from '@bufbuild/protobuf';
import { DataClient } from '../../dist/client/data-client.js';
import { createCertificateAuthority } from '../../dist/transport/certificates.js';
import { GetRequestSchema, SetRequestSchema } from '../../dist/gen/prism/data/v1/keyvalue_pb.js';
import { Redis } from 'ioredis';
import {
  BENCH,
  grpcFrame,
  h2load,
  loadAverage,
  loadPhase,
  machine,
  measured,
  prismRedisKey,
  runProcess,
  sleep,
  startBenchServer,
  startPrismProxy,
} from './lib.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '8' },
    streams: { type: 'string', default: '8' },
    rate: { type: 'string', default: '1000' },
    'latency-duration': { type: 'string', default: '10' },
    'value-size': { type: 'string', default: '100' },
    'skip-messaging': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const D = Number(values.duration);
const WARM = Number(values.warmup);
const C = Number(values.connections);
const M = Number(values.streams);
const NS = 'bench-kv';
const KEY = 'k';
const redisUrl = process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
// Where the proxy's Get of KEY reads: the namespace's keyvalue pattern `cache` on Redis.
const REDIS_KEY = prismRedisKey(NS, 'cache', KEY);
const value = new Uint8Array(Number(values['value-size'])).fill(120);
const node = process.execPath;
const results = {
  command: `node bench/proxy/${process.argv
    .slice(1)
    .join(' ')
    .replace(/^.*bench\/proxy\//, '')}`,
  machine: machine(),
  loadBefore: loadAverage(),
  startedAt: new Date().toISOString(),
  h2load: {},
  redis: {},
  latency: {},
  messaging: {},
};
const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

/* global fetch */
// ---- inputs -------------------------------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'prism-bench-proxy-'));
const kvDir = join(work, 'ns-kv');
const msgDir = join(work, 'ns-msg');
mkdirSync(kvDir);
mkdirSync(msgDir);
writeFileSync(
  join(kvDir, 'kv.yaml'),
  `namespace: ${NS}\nteam: bench\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n`,
);
const runId = Date.now().toString(36);
for (const backend of ['nats', 'kafka']) {
  writeFileSync(
    join(msgDir, `${backend}.yaml`),
    `namespace: bench-${backend}\nteam: bench\npatterns:\n  - name: events\n    type: producer\n    slots:\n      sink: { backend: ${backend} }\n    settings: { topic: bench-${runId}, max_retries: 3 }\n  - name: worker\n    type: consumer\n    slots:\n      source: { backend: ${backend} }\n    settings: { topic: bench-${runId}, consumer_group: bench, max_retries: 2, ack_timeout: 10s }\n`,
  );
}
// TLS: a CA made for this run and a server certificate for 127.0.0.1.
const authority = await createCertificateAuthority('Prism bench CA', 1);
const serverPair = await authority.issueServer();
const tlsFiles = {
  ca: join(work, 'ca.pem'),
  cert: join(work, 'server.pem'),
  key: join(work, 'server-key.pem'),
};
writeFileSync(tlsFiles.ca, authority.cert);
writeFileSync(tlsFiles.cert, serverPair.cert);
writeFileSync(tlsFiles.key, serverPair.key, { mode: 0o600 });
// The test services' Redis when its URL is given (scripts/test-services.sh ports), else the default.
const backends = process.env.PRISM_TEST_REDIS_URL ? join(work, 'backends.yaml') : undefined;
if (backends)
  writeFileSync(
    backends,
    `backends:\n  redis:\n    - { name: bench, endpoint: ${process.env.PRISM_TEST_REDIS_URL} }\n  nats:\n    - { name: bench, endpoint: ${process.env.PRISM_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'} }\n  kafka:\n    - { name: bench, endpoint: ${process.env.PRISM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092'} }\n`,
  );
const bodies = {
  Get: grpcFrame(toBinary(GetRequestSchema, create(GetRequestSchema, { key: KEY }))),
  Set: grpcFrame(toBinary(SetRequestSchema, create(SetRequestSchema, { key: KEY, value }))),
};
for (const [method, body] of Object.entries(bodies)) writeFileSync(join(work, `${method}.bin`), body);

// ---- h2load -------------------------------------------------------------------------------------
const h2 = (port, method, seconds, scheme = 'http') =>
  h2load({
    port,
    path: `/prism.data.v1.KeyValue/${method}`,
    bodyFile: join(work, `${method}.bin`),
    namespace: NS,
    seconds,
    connections: C,
    streams: M,
    scheme,
  });

/** Sanity: a real grpc-js client gets the right answer before the server is loaded. */
async function sanity(port, tls = false) {
  const client = new DataClient(tls ? `grpcs://127.0.0.1:${port}` : `127.0.0.1:${port}`, {
    namespace: NS,
    timeoutMs: 5000,
    ...(tls ? { tls: { caFile: tlsFiles.ca } } : {}),
  });
  try {
    await client.set(KEY, value);
    const got = await client.get(KEY);
    if (!got.found || got.value.length !== value.length) throw new Error('Get did not return the value');
  } finally {
    client.close();
  }
}

/** prism_proxy_requests_total by code, summed over the workers' metrics ports. */
async function proxyCodes(httpPorts, tls = false) {
  const codes = {};
  for (const port of httpPorts) {
    const text = tls
      ? await httpsText(port, '/metrics')
      : await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const m of text.matchAll(/^prism_proxy_requests_total\{[^}]*code="([^"]+)"[^}]*\} (\d+)/gm))
      codes[m[1]] = (codes[m[1]] ?? 0) + Number(m[2]);
  }
  return codes;
}

/** GET over HTTPS trusting the run's CA. */
function httpsText(port, path) {
  return new Promise((resolve, reject) => {
    httpsGet({ host: '127.0.0.1', port, path, ca: readFileSync(tlsFiles.ca) }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve(text));
    }).once('error', reject);
  });
}

async function measuredPhase(label, server, method) {
  const scheme = server.tls ? 'https' : 'http';
  await h2(server.port, method, WARM, scheme);
  const r = await loadPhase(server.pid, () => h2(server.port, method, D, scheme), { redisUrl });
  results.h2load[label] = r;
  log(
    `${label.padEnd(28)} ${String(r.perSec).padStart(7)} req/s  ok ${r.succeeded} fail ${r.failed}` +
      `  server ${r.serverCores} cores (${r.serverUsPerCall} µs/call)  h2load ${r.generatorCores}, redis ${r.redisCores}, other ${r.otherCores} cores  RSS ${r.rssPeakMiB} MiB`,
  );
  return r;
}

async function withServer(start, body) {
  const server = await start();
  try {
    return await body(server);
  } finally {
    const code = await server.stop();
    if (code !== 0 && code !== null) log(`server exited with ${code}`);
  }
}

const benchServer = (script, args) => () => startBenchServer(node, [join(BENCH, script), ...args]);

const prismProxy =
  (dir, workers, tls = false) =>
  () =>
    startPrismProxy({
      namespaces: dir,
      backends,
      workers,
      home: join(work, 'home'),
      tls: tls ? tlsFiles : undefined,
    });

async function openLoop(args) {
  const { code, stdout, stderr } = await runProcess(
    node,
    [join(BENCH, 'openloop.js'), '--rate', values.rate, '--duration', values['latency-duration'], ...args],
    { timeoutMs: (Number(values['latency-duration']) + 30) * 1000 },
  );
  if (code !== 0) throw new Error(`openloop failed: ${stderr}`);
  return { ...JSON.parse(stdout.trim().split('\n').pop()), loadAverage: loadAverage() };
}

// ---- run ----------------------------------------------------------------------------------------
log(`machine: ${JSON.stringify(results.machine)}; load average ${results.loadBefore}`);
const h2v = await runProcess('h2load', ['--version']);
if (h2v.code !== 0) throw new Error('h2load not found: run bash bench/proxy/setup.sh');
results.machine.h2load = h2v.stdout.trim();

// 1. direct ioredis, reading the key the proxy's Get reads (the redis driver stores the bytes as they are)
const seed = new Redis(redisUrl, { lazyConnect: true });
await seed.connect();
await seed.set(REDIS_KEY, Buffer.from(value));
seed.disconnect();
for (const ap of [false, true]) {
  const { code, stdout, stderr } = await runProcess(
    node,
    [
      join(BENCH, 'redis-load.js'),
      '--url',
      redisUrl,
      '--key',
      REDIS_KEY,
      '--duration',
      String(D),
      ...(ap ? ['--autopipelining'] : []),
    ],
    { timeoutMs: (D + 30) * 1000 },
  );
  if (code !== 0) throw new Error(`redis-load failed: ${stderr}`);
  const r = JSON.parse(stdout.trim().split('\n').pop());
  r.clientCpuCores = +(r.clientCpuSec / r.seconds).toFixed(2);
  results.redis[ap ? 'autopipelining' : 'plain'] = r;
  log(
    `ioredis GET c=64 ${ap ? 'autopipelining' : 'plain         '} ${r.opsPerSec.toFixed(0).padStart(7)} ops/s  errors ${r.errors}  client ${r.clientCpuCores} cores`,
  );
}

// 2. transport ceilings
for (const transport of ['grpc-js', 'connect']) {
  for (const workers of [1, 2]) {
    await withServer(
      benchServer('echo-server.js', ['--transport', transport, '--workers', String(workers)]),
      async (server) => {
        if (transport === 'grpc-js') await sanity(server.port);
        await measuredPhase(`echo ${transport} w${workers} Get`, server, 'Get');
      },
    );
  }
}

// 3. the Prism proxy (grpc-js), 1 and 2 workers, plaintext then TLS; latency at a fixed rate with 1 worker
for (const workers of [1, 2]) {
  for (const tls of [false, true]) {
    const name = `proxy grpc-js w${workers}${tls ? ' TLS' : ''}`;
    await withServer(prismProxy(kvDir, workers, tls), async (server) => {
      await sanity(server.port, tls);
      const before = await proxyCodes(server.httpPorts, tls);
      await measuredPhase(`${name} Get`, server, 'Get');
      await measuredPhase(`${name} Set`, server, 'Set');
      const after = await proxyCodes(server.httpPorts, tls);
      const codes = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
      results.h2load[`${name} Get`].codes = codes;
      log(`${name} calls by code (metrics, incl. warm-up): ${JSON.stringify(codes)}`);
      if (workers === 1 && tls) {
        results.latency.proxyTls = await openLoop([
          '--target',
          'grpc',
          '--port',
          String(server.port),
          '--namespace',
          NS,
          '--body',
          bodies.Get.toString('base64'),
          '--ca',
          tlsFiles.ca,
        ]);
      }
      if (workers === 1 && !tls) {
        results.latency.redis = await openLoop(['--target', 'redis', '--url', redisUrl, '--key', REDIS_KEY]);
        results.latency.proxy = await openLoop([
          '--target',
          'grpc',
          '--port',
          String(server.port),
          '--namespace',
          NS,
          '--body',
          bodies.Get.toString('base64'),
        ]);
        const m = await measured(server.pid, () => sleep(200));
        results.latency.proxyRssIdleAfterMiB = +m.rssPeakMiB.toFixed(1);
      }
    });
  }
}

// 4. the same path on connect-node
for (const workers of [1, 2]) {
  await withServer(
    benchServer('connect-proxy.js', [
      '--namespaces',
      kvDir,
      '--workers',
      String(workers),
      ...(backends ? ['--backends', backends] : []),
    ]),
    async (server) => {
      await sanity(server.port);
      await measuredPhase(`proxy connect w${workers} Get`, server, 'Get');
      if (workers === 1) {
        await measuredPhase(`proxy connect w${workers} Set`, server, 'Set');
        results.latency.connect = await openLoop([
          '--target',
          'grpc',
          '--port',
          String(server.port),
          '--namespace',
          NS,
          '--body',
          bodies.Get.toString('base64'),
        ]);
      }
      await server.stop();
      const counts = [...server.output().matchAll(/\{"msg":"bench server counts".*\}/g)].map((m) =>
        JSON.parse(m[0]),
      );
      results.h2load[`proxy connect w${workers} Get`].codes = counts.map((c) => c.codes);
    },
  );
}
for (const [k, r] of Object.entries(results.latency))
  if (typeof r === 'object')
    log(
      `latency @${values.rate}/s ${k.padEnd(8)} p50 ${r.p50} ms  p99 ${r.p99} ms  p99.9 ${r.p999} ms  max ${r.max} ms  errors ${r.errors}`,
    );

// 5. publish → consume through the proxy
if (!values['skip-messaging']) {
  await withServer(prismProxy(msgDir, 1), async (server) => {
    for (const [backend, count] of [
      ['nats', 2000],
      ['kafka', 1000],
    ]) {
      const { code, stdout, stderr } = await runProcess(
        node,
        [
          join(BENCH, 'messaging.js'),
          '--endpoint',
          `127.0.0.1:${server.port}`,
          '--namespace',
          `bench-${backend}`,
          '--count',
          String(count),
          '--budget',
          '20',
        ],
        { timeoutMs: 90_000 },
      );
      const r =
        code === 0
          ? JSON.parse(stdout.trim().split('\n').pop())
          : { error: `exit ${code}: ${stderr.slice(-500)}` };
      results.messaging[backend] = r;
      log(`publish→consume ${backend}: ${JSON.stringify(r)}`);
    }
  });
}

// ---- summary ------------------------------------------------------------------------------------
results.loadAfter = loadAverage();
const g = (k) => results.h2load[k]?.perSec ?? NaN;
const ratio = (a, b) => +(a / b).toFixed(2);
const lat = results.latency;
results.summary = {
  a_proxyOverCeiling_w1: ratio(g('proxy grpc-js w1 Get'), g('echo grpc-js w1 Get')),
  a_proxyOverCeiling_w2: ratio(g('proxy grpc-js w2 Get'), g('echo grpc-js w2 Get')),
  b_proxyOverIoredisAP_w1: ratio(g('proxy grpc-js w1 Get'), results.redis.autopipelining.opsPerSec),
  b_proxyOverIoredisAP_w2: ratio(g('proxy grpc-js w2 Get'), results.redis.autopipelining.opsPerSec),
  c_addedP50ms: +(lat.proxy.p50 - lat.redis.p50).toFixed(3),
  c_addedP99ms: +(lat.proxy.p99 - lat.redis.p99).toFixed(3),
  c_addedP50ms_connect: +(lat.connect.p50 - lat.redis.p50).toFixed(3),
  c_addedP99ms_connect: +(lat.connect.p99 - lat.redis.p99).toFixed(3),
  d_rssUnderLoadMiB_w1: results.h2load['proxy grpc-js w1 Get'].rssPeakMiB,
  d_rssUnderLoadMiB_w2: results.h2load['proxy grpc-js w2 Get'].rssPeakMiB,
  connectOverGrpcJs_echo_w1: ratio(g('echo connect w1 Get'), g('echo grpc-js w1 Get')),
  connectOverGrpcJs_proxyGet_w1: ratio(g('proxy connect w1 Get'), g('proxy grpc-js w1 Get')),
  connectOverGrpcJs_proxySet_w1: ratio(g('proxy connect w1 Set'), g('proxy grpc-js w1 Set')),
  connectOverGrpcJs_proxyGet_w2: ratio(g('proxy connect w2 Get'), g('proxy grpc-js w2 Get')),
  connectProxyOverConnectCeiling_w1: ratio(g('proxy connect w1 Get'), g('echo connect w1 Get')),
  e_tlsOverPlain_get_w1: ratio(g('proxy grpc-js w1 TLS Get'), g('proxy grpc-js w1 Get')),
  e_tlsOverPlain_set_w1: ratio(g('proxy grpc-js w1 TLS Set'), g('proxy grpc-js w1 Set')),
  e_tlsOverPlain_get_w2: ratio(g('proxy grpc-js w2 TLS Get'), g('proxy grpc-js w2 Get')),
  e_tlsAddedP50ms: +(lat.proxyTls.p50 - lat.proxy.p50).toFixed(3),
  e_tlsAddedP99ms: +(lat.proxyTls.p99 - lat.proxy.p99).toFixed(3),
};
const s = results.summary;
const out = [
  '',
  `== bench/proxy summary (${results.machine.cores} cores, load ${results.loadBefore} → ${results.loadAfter}) ==`,
  `throughput, h2load -c ${C} -m ${M} (${C * M} in flight), ${D} s after ${WARM} s warm-up:`,
  ...Object.entries(results.h2load).map(
    ([k, r]) =>
      `  ${k.padEnd(26)} ${String(r.perSec).padStart(7)} calls/s  server ${r.serverCores} cores, ${r.serverUsPerCall} µs CPU/call; h2load ${r.generatorCores}, redis ${r.redisCores}, others ${r.otherCores} cores; RSS ${r.rssPeakMiB} MiB`,
  ),
  `  ioredis GET c=64 plain      ${results.redis.plain.opsPerSec.toFixed(0).padStart(7)} ops/s (client ${results.redis.plain.clientCpuCores} cores)`,
  `  ioredis GET c=64 autopipe   ${results.redis.autopipelining.opsPerSec.toFixed(0).padStart(7)} ops/s (client ${results.redis.autopipelining.clientCpuCores} cores)`,
  `(a) proxy ÷ bare grpc-js ceiling:        1 worker ${s.a_proxyOverCeiling_w1}, 2 workers ${s.a_proxyOverCeiling_w2}   (goal ≥ 0.9)`,
  `(b) proxy ÷ ioredis with autopipelining: 1 worker ${s.b_proxyOverIoredisAP_w1}, 2 workers ${s.b_proxyOverIoredisAP_w2}   (goal ≥ 0.35 with all cores)`,
  `(c) at ${values.rate} ops/s: ioredis p50 ${lat.redis.p50} / p99 ${lat.redis.p99} ms; proxy p50 ${lat.proxy.p50} / p99 ${lat.proxy.p99} ms → added +${s.c_addedP50ms} / +${s.c_addedP99ms} ms (goal ≤ +0.5 / +2)`,
  `    connect-node variant: p50 ${lat.connect.p50} / p99 ${lat.connect.p99} ms → added +${s.c_addedP50ms_connect} / +${s.c_addedP99ms_connect} ms`,
  `(d) proxy RSS under load: 1 worker ${s.d_rssUnderLoadMiB_w1} MiB; 2 workers ${s.d_rssUnderLoadMiB_w2} MiB (primary + workers: ${results.h2load['proxy grpc-js w2 Get'].rssEachMiB.join(' + ')})`,
  `(e) proxy TLS ÷ plaintext: Get w1 ${s.e_tlsOverPlain_get_w1}, Set w1 ${s.e_tlsOverPlain_set_w1}, Get w2 ${s.e_tlsOverPlain_get_w2}   (goal ≥ 0.85)`,
  `    at ${values.rate} ops/s: TLS p50 ${lat.proxyTls.p50} / p99 ${lat.proxyTls.p99} ms → +${s.e_tlsAddedP50ms} / +${s.e_tlsAddedP99ms} ms over plaintext (goal p50 ≤ +0.2)`,
  `connect-node ÷ grpc-js: echo ${s.connectOverGrpcJs_echo_w1}, proxy Get ${s.connectOverGrpcJs_proxyGet_w1} (w2 ${s.connectOverGrpcJs_proxyGet_w2}), proxy Set ${s.connectOverGrpcJs_proxySet_w1}`,
  ...Object.entries(results.messaging).map(([k, r]) =>
    r.error
      ? `publish→consume ${k}: ${r.error}`
      : `publish→consume ${k}: published ${r.published} at ${r.publishPerSec}/s, received ${r.received} at ${r.consumePerSec}/s, e2e p50 ${r.e2eP50ms} / p99 ${r.e2eP99ms} ms (join ${r.joinMs} ms, errors ${r.publishErrors}/${r.ackErrors})`,
  ),
];
console.log(out.join('\n'));
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
