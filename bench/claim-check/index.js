#!/usr/bin/env node
// Benchmark (not a test) of the claim check (issue 19), in one run, for payloads of 1, 10 and
// 100 MiB (--sizes, in MiB):
//
// 1. Direct: the same bytes PUT to and GET from the S3-compatible store with the client's AWS SDK
//    (one put and one get per payload, in sequence).
// 2. Claim check: a real `prismctl proxy serve` (--max-message-size 256MiB) serving a producer and a
//    consumer on Redis Streams with an s3 objects slot; each payload is published by the client
//    and timed until the subscriber has it (publish → claim stored → message → fetch → delivery),
//    with --modes: `upload` (Producer/PublishUpload, 256 KiB frames streamed to the store, the
//    way `publish --file` sends large files) and/or `publish` (one unary Publish holding it whole).
//
// 3. The floor (--relay-floor, on by default): each client's direct put+get again through a process
//    that only relays bytes in front of the store, one in Node (bench/proxy/relay.js) and one in Go
//    (go-anchor/relay, when a Go toolchain builds it), so the print says what moving the bytes
//    through one more process each way costs on this machine, before any work of a proxy. The
//    claim check moves them through one more process each way (client → proxy → store on publish,
//    store → proxy → client on delivery), so its ratio cannot pass the floor's.
//
// 4. The anchor (on by default, --no-anchor leaves it out): bench/proxy/go-anchor/claimanchor, a
//    minimal grpc-go server keeping the same claim-check contract on the same Redis and store
//    (hash, PutObject under claims/<sha256>/<id>, XADD of the claim; XREADGROUP, GetObject whole,
//    SHA-256 verified, delivered on Subscribe; XACK and DeleteObject on Acknowledge), without
//    auth, TTLs, markers, retries or dead letters. Each client kind reaches it through a second
//    client of that kind with its own subscription, measured in the same rounds as direct and the
//    proxy (the proxy and the anchor take turns going first), so the print says how far a lean
//    implementation gets on this machine (anchor ÷ direct) and where Prism stands against it
//    (prism ÷ anchor). Built when a Go toolchain exists.
//
// The contenders run from each client of --clients, one client after the other, each subscribed
// only while it runs: `go` (bench/proxy/go-anchor/claimclient, grpc-go and the AWS SDK for Go v2 in a
// Go process, built when a Go toolchain exists) and `node` (DataClient and the AWS SDK v3 in this
// process). The Node client spends about as much CPU as the proxy on a 100 MiB transfer, on the
// same 2 cores; the Go client little, but it reads the object directly much faster too.
//
// It prints MiB/s of each and the ratio claim check ÷ direct (goal >= 0.7), with the load average,
// the anchor's MiB/s with anchor ÷ direct and prism ÷ anchor, and the proxy's (and the anchor's)
// CPU time per transfer (user + system, from /proc; median), which a busy machine
// does not inflate the way it does wall time, split into the publish (until the publish call
// returned) and the delivery (until the subscriber had the message), and the client's own CPU
// per transfer for each contender.
// Run after `npm run build` with the test services up (redis and s3):
//   eval "$(bash scripts/test-services.sh env)"
//   node bench/claim-check/index.js [--sizes 1,10,100] [--rounds 3] [--compression none] [--modes upload,publish] [--clients go,node] [--no-relay-floor] [--no-anchor]
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setTimeout } from 'node:timers';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,10,100' },
    rounds: { type: 'string', default: '3' },
    compression: { type: 'string', default: 'none' },
    modes: { type: 'string', default: 'upload,publish' },
    clients: { type: 'string', default: 'go,node' },
    'relay-floor': { type: 'boolean', default: true },
    anchor: { type: 'boolean', default: true },
  },
  allowNegative: true,
});
const SIZES = values.sizes.split(',').map((s) => Number(s.trim()));
const ROUNDS = Number(values.rounds);
const MODES = values.modes.split(',').map((m) => m.trim());
for (const mode of MODES) if (mode !== 'upload' && mode !== 'publish') throw new Error(`--modes: ${mode}?`);
const CLIENTS = values.clients.split(',').map((c) => c.trim());
for (const name of CLIENTS) if (name !== 'go' && name !== 'node') throw new Error(`--clients: ${name}?`);
const MiB = 1024 * 1024;
const redisUrl = process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const s3 = {
  endpoint: process.env.PRISM_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:8333',
  region: process.env.PRISM_TEST_S3_REGION ?? 'us-east-1',
  key: process.env.PRISM_TEST_S3_ACCESS_KEY ?? '',
  secret: process.env.PRISM_TEST_S3_SECRET_KEY ?? '',
};
if (s3.key === '')
  throw new Error('PRISM_TEST_S3_ACCESS_KEY is not set: eval "$(bash scripts/test-services.sh env)"');
const BUCKET = 'prism-bench-claims';

const { DataClient } = await import(join(root, 'dist', 'client/data-client.js'));
const { buildGo, startProcess } = await import(join(root, 'bench/proxy/lib.js'));

const s3Client = (endpoint) =>
  new S3Client({
    endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.key, secretAccessKey: s3.secret },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
const client = s3Client(s3.endpoint);
await client.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);

/**
 * The floor's byte relays in front of the store: Node's (bench/proxy/relay.js) and, when a Go
 * toolchain builds it, Go's (go-anchor/relay), each with an S3 client that goes through it.
 */
async function startRelays() {
  const target = new URL(s3.endpoint);
  const to = `${target.hostname}:${target.port}`;
  const kinds = [['node relay', process.execPath, [join(root, 'bench/proxy/relay.js')]]];
  const goRelay = await buildGo('./relay', 'go-relay', (m) => console.log(`(${m})`));
  if (goRelay) kinds.push(['go relay', goRelay, []]);
  const relays = [];
  for (const [name, cmd, args] of kinds) {
    const proc = await startProcess(
      cmd,
      [...args, '--listen', '127.0.0.1:0', '--to', to],
      'bench relay ready',
    );
    const endpoint = `http://127.0.0.1:${proc.ready.port}`;
    relays.push({ name, endpoint, client: s3Client(endpoint), stop: () => proc.stop() });
  }
  return relays;
}
const relays = values['relay-floor'] ? await startRelays() : [];

async function direct(payload, via = client) {
  const Key = `direct/${randomUUID()}`;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await via.send(
    new PutObjectCommand({ Bucket: BUCKET, Key, Body: payload, ContentLength: payload.byteLength }),
  );
  const put = performance.now();
  const res = await via.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
  const back = await res.Body.transformToByteArray();
  if (back.byteLength !== payload.byteLength) throw new Error('direct: short read');
  const end = performance.now();
  const clientCpuMs = cpuMsSince(cpuBefore);
  // Deleted again: SeaweedFS runs out of volumes for a bucket that keeps gigabytes of them.
  await via.send(new DeleteObjectCommand({ Bucket: BUCKET, Key }));
  return { ms: end - started, firstMs: put - started, secondMs: end - put, clientCpuMs };
}

/** CPU milliseconds (user + system) this process has used since `before`. */
function cpuMsSince(before) {
  const { user, system } = process.cpuUsage(before);
  return (user + system) / 1000;
}

// --- the proxy ---
const dir = mkdtempSync(join(tmpdir(), 'prism-bench-claims-'));
const namespace = `bench-claims-${Date.now().toString(36)}`;
mkdirSync(join(dir, 'ns'));
writeFileSync(
  join(dir, 'ns', 'claims.yaml'),
  [
    `namespace: ${namespace}`,
    'team: bench',
    'patterns:',
    '  - name: files',
    '    type: producer',
    '    slots: { sink: { backend: redis }, objects: { backend: s3, credentials: "${PRISM_BENCH_S3}" } }',
    `    settings: { topic: files, max_message_size: 200MiB, claim_check: { threshold: 512KiB, compression: ${values.compression}, ttl: 1h } }`,
    '  - name: reader',
    '    type: consumer',
    '    slots: { source: { backend: redis }, objects: { backend: s3, credentials: "${PRISM_BENCH_S3}" } }',
    '    settings: { topic: files, consumer_group: bench, ack_timeout: 120s, claim_check: {} }',
    '',
  ].join('\n'),
);
writeFileSync(
  join(dir, 'backends.yaml'),
  `backends:\n  redis: [{ name: b, endpoint: "${redisUrl}" }]\n  s3: [{ name: b, endpoint: "${s3.endpoint}/${BUCKET}?region=${s3.region}" }]\n`,
);
const child = spawn(
  process.execPath,
  [
    // e.g. PRISM_BENCH_PROXY_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the proxy.
    ...(process.env.PRISM_BENCH_PROXY_FLAGS ?? '').split(' ').filter((f) => f !== ''),
    join(root, 'bin/run.js'),
    'proxy',
    'serve',
    '--namespaces',
    join(dir, 'ns'),
    '--backends',
    join(dir, 'backends.yaml'),
    '--listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
    '--max-message-size',
    '256MiB',
  ],
  {
    env: { ...process.env, PRISM_HOME: dir, PRISM_BENCH_S3: `${s3.key}:${s3.secret}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  },
);
let output = '';
let ready = false;
child.stderr.on('data', (d) => (output += d));
// PRISM_BENCH_PROXY_LOG=<file> keeps the proxy's output (e.g. of --trace-gc).
if (process.env.PRISM_BENCH_PROXY_LOG) {
  const log = createWriteStream(process.env.PRISM_BENCH_PROXY_LOG);
  child.stdout.pipe(log);
  child.stderr.pipe(log);
}
const port = await new Promise((resolveReady, reject) => {
  const timer = setTimeout(() => reject(new Error(`proxy did not start:\n${output}`)), 60_000);
  child.stdout.on('data', (d) => {
    if (ready) return; // the proxy's log after start is not kept
    output += d;
    const line = output.split('\n').find((l) => l.includes('"msg":"prism proxy serving"'));
    if (line) {
      ready = true;
      clearTimeout(timer);
      resolveReady(JSON.parse(line).port);
    }
  });
  child.once('exit', (code) => reject(new Error(`proxy exited with ${code}:\n${output}`)));
});

/** The proxy as a claim-check server the clients are pointed at. */
const proxy = { port, pid: child.pid };

/**
 * The anchor (bench/proxy/go-anchor/claimanchor) on its own Redis stream, when a Go toolchain
 * builds it and --no-anchor is not given.
 */
async function startAnchor() {
  const bin = await buildGo('./claimanchor', 'claim-anchor', (m) => console.log(`(${m})`));
  if (!bin) {
    console.log('(no Go toolchain: the anchor is left out)');
    return undefined;
  }
  const proc = await startProcess(
    bin,
    [
      ...['-listen', '127.0.0.1:0', '-redis', redisUrl, '-threshold', String(512 * 1024)],
      ...['-s3-endpoint', s3.endpoint, '-region', s3.region, '-bucket', BUCKET],
    ],
    'bench server ready',
    { env: { AWS_ACCESS_KEY_ID: s3.key, AWS_SECRET_ACCESS_KEY: s3.secret } },
  );
  return { port: proc.ready.port, pid: proc.child.pid, stop: () => proc.stop() };
}
let anchor;

/** CPU milliseconds (user + system) process `pid` has used; Linux /proc, clock ticks of 10 ms. */
function cpuMsOf(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * The Node client of `server` (the proxy or the anchor): DataClient (grpc-js) and the AWS SDK v3
 * in this process. Each contender subscribes to the group only while it runs, so that one delivery
 * goes to the one that waits.
 */
function nodeClient(server) {
  const proxyCpuMs = () => cpuMsOf(server.pid);
  const data = new DataClient(`127.0.0.1:${server.port}`, { namespace, timeoutMs: 120_000 });
  const stream = data.subscribe({ group: 'bench' });
  const waiting = new Map();
  stream.on('data', (r) => {
    const done = waiting.get(r.message.messageId);
    data
      .acknowledge({ subscriptionId: r.subscriptionId, deliveryId: r.deliveryId, success: true })
      .catch(() => undefined);
    if (done) done(r.message.payload.byteLength);
  });
  stream.on('error', () => undefined);
  let payload;
  return {
    name: 'node',
    async payload(bytes) {
      payload = randomBytes(bytes);
    },
    direct: () => direct(payload),
    relayed: (relay) => direct(payload, relay.client),
    async claimed(mode) {
      const messageId = randomUUID();
      const cpuBefore = proxyCpuMs();
      const clientCpuBefore = process.cpuUsage();
      const started = performance.now();
      const delivered = new Promise((r) => waiting.set(messageId, r));
      if (mode === 'upload') await data.publishUpload({ messageId }, payload);
      else await data.publish({ payload, messageId });
      const cpuPublished = proxyCpuMs();
      const published = performance.now();
      const size = await delivered;
      waiting.delete(messageId);
      if (size !== payload.byteLength) throw new Error('claim check: short delivery');
      const cpuDelivered = proxyCpuMs();
      const end = performance.now();
      return {
        ms: end - started,
        firstMs: published - started,
        secondMs: end - published,
        cpuMs: cpuDelivered - cpuBefore,
        publishCpuMs: cpuPublished - cpuBefore,
        deliveryCpuMs: cpuDelivered - cpuPublished,
        clientCpuMs: cpuMsSince(clientCpuBefore),
      };
    },
    async close() {
      stream.cancel();
      data.close();
    },
  };
}

/**
 * The Go client (bench/proxy/go-anchor/claimclient) of `server` (the proxy or the anchor): the same
 * operations from a Go process.
 */
async function goClient(bin, server) {
  const go = spawn(
    bin,
    [
      ...['-endpoint', `127.0.0.1:${server.port}`, '-namespace', namespace, '-group', 'bench'],
      ...[
        '-proxy-pid',
        String(server.pid),
        '-s3-endpoint',
        s3.endpoint,
        '-region',
        s3.region,
        '-bucket',
        BUCKET,
      ],
    ],
    {
      env: { ...process.env, AWS_ACCESS_KEY_ID: s3.key, AWS_SECRET_ACCESS_KEY: s3.secret },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: go.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((_, reject) =>
    go.once('exit', (code) => reject(new Error(`claimclient exited (${code})`))),
  );
  exited.catch(() => undefined);
  const next = async () => {
    const line = await Promise.race([lines.next(), exited]);
    if (line.done) throw new Error('claimclient ended its output (its error is above)');
    return JSON.parse(line.value);
  };
  const ask = (command) => {
    go.stdin.write(`${command}\n`);
    return next();
  };
  await next(); // ready
  return {
    name: 'go',
    payload: (bytes) => ask(`payload ${bytes}`),
    direct: () => ask('direct'),
    relayed: (relay) => ask(`direct ${relay.endpoint}`),
    claimed: (mode) => ask(`claim ${mode}`),
    async close() {
      go.stdin.end();
      go.kill('SIGTERM');
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** The two phases of the run of median total time. */
const split = (runs) => {
  const { firstMs, secondMs } = [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)];
  return `${firstMs.toFixed(0)} + ${secondMs.toFixed(0)}`;
};
function printHeader() {
  console.log(
    `claim-check bench: ${cpus().length} cores, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, compression ${values.compression}, ${ROUNDS} rounds (median)`,
  );
  console.log(
    'client size     mode      direct put+get   claim check (proxy)   ratio   proxy CPU/transfer (publish + delivery)   wall ms: direct put + get, claim check publish + delivery   bench client CPU/transfer: direct, claim check' +
      (anchor
        ? '   | anchor (go claimanchor)   ÷ direct   prism ÷ anchor   anchor CPU/transfer (publish + delivery)   wall ms: anchor publish + delivery'
        : ''),
  );
}
const floors = [];
/**
 * One client's rows: every size and mode, rounds interleaving direct, the claim check through the
 * proxy and, with `anchored` (the same client of the anchor), through the anchor; the proxy and
 * the anchor take turns going first, so that neither always follows the direct put+get.
 */
async function measureWith(contender, anchored) {
  // One warm-up each, not counted.
  await contender.payload(2 * MiB);
  await contender.direct();
  for (const mode of MODES) await contender.claimed(mode);
  if (anchored) {
    await anchored.payload(2 * MiB);
    for (const mode of MODES) await anchored.claimed(mode);
  }
  for (const mib of SIZES) {
    for (const mode of MODES) {
      const directRuns = [];
      const claimRuns = [];
      const anchorRuns = [];
      const relayed = new Map(relays.map((relay) => [relay, []]));
      for (let i = 0; i < ROUNDS; i++) {
        await contender.payload(mib * MiB);
        if (anchored) await anchored.payload(mib * MiB);
        directRuns.push(await contender.direct());
        if (mode === MODES[0])
          for (const relay of relays) relayed.get(relay).push((await contender.relayed(relay)).ms);
        if (anchored && i % 2 === 1) anchorRuns.push(await anchored.claimed(mode));
        claimRuns.push(await contender.claimed(mode));
        if (anchored && i % 2 === 0) anchorRuns.push(await anchored.claimed(mode));
      }
      const of = (runs, field) => median(runs.map((r) => r[field]));
      /** The server's CPU per transfer (publish + delivery), medians. */
      const cpu = (runs) =>
        `${String(Math.round(of(runs, 'cpuMs'))).padStart(8)} ms (${Math.round(of(runs, 'publishCpuMs'))} + ${Math.round(of(runs, 'deliveryCpuMs'))})`;
      const dRate = mib / (of(directRuns, 'ms') / 1000);
      const cRate = mib / (of(claimRuns, 'ms') / 1000);
      let anchorColumns = '';
      if (anchored) {
        const aRate = mib / (of(anchorRuns, 'ms') / 1000);
        anchorColumns = `   | ${aRate.toFixed(1).padStart(8)} MiB/s             ${(aRate / dRate).toFixed(2)}       ${(cRate / aRate).toFixed(2)}       ${cpu(anchorRuns)}   ${split(anchorRuns)}`;
      }
      console.log(
        `${contender.name.padEnd(6)} ${String(mib).padStart(3)} MiB  ${mode.padEnd(8)} ${dRate.toFixed(1).padStart(8)} MiB/s   ${cRate.toFixed(1).padStart(10)} MiB/s        ${(cRate / dRate).toFixed(2)}   ${cpu(claimRuns)}   ${split(directRuns)}, ${split(claimRuns)}   ${of(directRuns, 'clientCpuMs').toFixed(0)}, ${of(claimRuns, 'clientCpuMs').toFixed(0)} ms${anchorColumns}`,
      );
      for (const [relay, runs] of relayed) {
        if (runs.length === 0) continue;
        const rRate = mib / (median(runs) / 1000);
        floors.push(
          `${contender.name.padEnd(6)} ${String(mib).padStart(3)} MiB  through the ${relay.name.padEnd(10)} ${rRate.toFixed(1).padStart(8)} MiB/s, ÷ direct ${(rRate / dRate).toFixed(2)}`,
        );
      }
    }
  }
}

try {
  if (values.anchor) anchor = await startAnchor();
  printHeader();
  for (const name of CLIENTS) {
    let contender;
    let anchored;
    if (name === 'go') {
      const bin = await buildGo('./claimclient', 'claim-client', (m) => console.log(`(${m})`));
      if (!bin) {
        console.log('(no Go toolchain: the go client is left out)');
        continue;
      }
      contender = await goClient(bin, proxy);
      if (anchor) anchored = await goClient(bin, anchor);
    } else {
      contender = nodeClient(proxy);
      if (anchor) anchored = nodeClient(anchor);
    }
    try {
      await measureWith(contender, anchored);
    } finally {
      await contender.close();
      await anchored?.close();
    }
  }
  if (floors.length) {
    console.log(
      'the floor: the same direct put+get, through a process that only relays bytes (no work of a proxy):',
    );
    for (const line of floors) console.log(line);
  }
  console.log(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
} finally {
  client.destroy();
  for (const relay of relays) {
    relay.client.destroy();
    await relay.stop();
  }
  await anchor?.stop();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
