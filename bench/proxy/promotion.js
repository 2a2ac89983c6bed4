#!/usr/bin/env node
// Diagnostic (not a test): how much of each unary call the proxy's V8 promotes to the old
// generation, and what the garbage collector costs for it. One `prismctl proxy serve` worker runs
// with `--trace-gc-nvp` added to its V8 flags; h2load drives KeyValue Get and BatchGet of 100 keys
// (pre-encoded, 8 connections × 8 streams) on a Redis-backed namespace; while each method runs,
// the proxy's young-generation collections are summed from its trace. It prints, per method:
// calls/s, bytes promoted per call, bytes that survived a scavenge per call, the number of
// scavenges and mark-compacts, the GC time on the main thread and on background threads, and the
// worker's peak RSS (sampled every 200 ms) with the old generation's live size and allocation
// limit after the method's last mark-compact: the limit over the live size is the growing factor
// V8 chose, which sets how far the RSS rises above idle under load.
//
// A call's objects should die young: bytes promoted per call that do not fall when the
// semi-spaces grow (--v8-flags='--max-semi-space-size=32 --min-semi-space-size=32') mean objects
// kept alive until a full collection rather than long-lived ones (bench/RESULTS.md, session 16).
//
//   npm run build && eval "$(bash scripts/test-services.sh env)"
//   node bench/proxy/promotion.js [--seconds 15] [--methods Get,BatchGet] [--v8-flags='--max-semi-space-size=8'] [--root DIR] [--json out.json]
// --root runs the proxy of another built tree (bin/, dist/, node_modules), to compare builds.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { parseArgs } from 'node:util';
import { create, toBinary } from '@bufbuild/protobuf';
import { Redis } from 'ioredis';
import { BatchGetRequestSchema, GetRequestSchema } from '../../dist/gen/prism/data/v1/keyvalue_pb.js';
import {
  gcTraceField,
  grpcFrame,
  h2load,
  loadAverage,
  machine,
  processTree,
  prismRedisKey,
  rssMiB,
  runProcess,
  startPrismProxy,
} from './lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '2' },
    methods: { type: 'string', default: 'Get,BatchGet' },
    'v8-flags': { type: 'string', default: '--max-semi-space-size=8' },
    root: { type: 'string' },
    json: { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const MiB = 1024 * 1024;
const NS = 'benchpromo';
const PATTERN = 'kv';
const KEYS = Array.from({ length: 100 }, (_, i) => `b${i}`);
const redisUrl = process.env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const work = mkdtempSync(join(tmpdir(), 'prism-bench-promotion-'));
mkdirSync(join(work, 'ns'));
writeFileSync(
  join(work, 'ns', 'kv.yaml'),
  `namespace: ${NS}\nteam: bench\npatterns:\n  - name: ${PATTERN}\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n`,
);
writeFileSync(
  join(work, 'backends.yaml'),
  `backends:\n  redis:\n    - { name: bench, endpoint: ${redisUrl} }\n`,
);
const bodies = {
  Get: toBinary(GetRequestSchema, create(GetRequestSchema, { key: 'b0' })),
  BatchGet: toBinary(BatchGetRequestSchema, create(BatchGetRequestSchema, { keys: KEYS })),
};
for (const [method, body] of Object.entries(bodies))
  writeFileSync(join(work, `${method}.bin`), grpcFrame(body));

if ((await runProcess('h2load', ['--version'])).code !== 0)
  throw new Error('h2load not found: run bash bench/proxy/setup.sh');
const redis = new Redis(redisUrl);
const value = Buffer.alloc(100, 'v');
await Promise.all(KEYS.map((k) => redis.set(prismRedisKey(NS, PATTERN, k), value)));
redis.disconnect();

/** Sums of the proxy's --trace-gc-nvp lines while a method is measured (null between). */
let gc = null;
function onTraceLine(line) {
  if (!gc) return;
  if (line.includes(' gc=s ')) {
    gc.scavenges++;
    gc.promoted += gcTraceField(line, 'promoted');
    gc.survived += gcTraceField(line, 'new_space_survived');
    gc.mainMs += gcTraceField(line, 'pause');
    gc.backgroundMs += gcTraceField(line, 'background.scavenge.parallel');
  } else if (line.includes(' gc=mc ')) {
    gc.markCompacts++;
    gc.liveAfterMc = gcTraceField(line, 'end_object_size');
    gc.oldGenLimit = gcTraceField(line, 'old_gen_allocation_limit');
    gc.mainMs += gcTraceField(line, 'pause') + gcTraceField(line, 'incremental');
    gc.backgroundMs += gcTraceField(line, 'background.mark') + gcTraceField(line, 'background.sweep');
  }
}

const proxy = await startPrismProxy({
  namespaces: join(work, 'ns'),
  backends: join(work, 'backends.yaml'),
  workers: 1,
  home: join(work, 'home'),
  ...(values.root ? { root: values.root } : {}),
  v8Flags: `${values['v8-flags']} --trace-gc-nvp`.trim(),
});
const worker = processTree(proxy.pid).at(-1);
let pending = '';
proxy.child.stdout.on('data', (d) => {
  const lines = (pending + d).split('\n');
  pending = lines.pop();
  for (const line of lines) onTraceLine(line);
});

const results = {
  machine: machine(),
  loadBefore: loadAverage(),
  v8Flags: values['v8-flags'],
  root: values.root ?? '(this tree)',
  idleRssMiB: Math.round(rssMiB([worker])[0]),
  methods: {},
};
console.log(
  `promotion: ${JSON.stringify(results.machine)}, load ${results.loadBefore}, --v8-flags '${values['v8-flags']}', idle RSS ${results.idleRssMiB} MiB`,
);
try {
  for (const method of values.methods.split(',')) {
    const load = (seconds) =>
      h2load({
        port: proxy.port,
        path: `/prism.data.v1.KeyValue/${method}`,
        bodyFile: join(work, `${method}.bin`),
        namespace: NS,
        seconds,
      });
    await load(Number(values.warmup));
    gc = { scavenges: 0, markCompacts: 0, promoted: 0, survived: 0, mainMs: 0, backgroundMs: 0 };
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMiB([worker])[0])), 200);
    const run = await load(SECONDS).finally(() => clearInterval(sampler));
    const sums = gc;
    gc = null;
    const calls = run.succeeded;
    const r = {
      callsPerSec: Math.round(run.perSec),
      failed: run.failed,
      promotedPerCall: Math.round(sums.promoted / calls),
      survivedPerCall: Math.round(sums.survived / calls),
      scavenges: sums.scavenges,
      markCompacts: sums.markCompacts,
      gcMainMs: Math.round(sums.mainMs),
      gcBackgroundMs: Math.round(sums.backgroundMs),
      rssPeakMiB: Math.round(peakRss),
      oldLiveMiB: +(sums.liveAfterMc / MiB).toFixed(1),
      oldLimitMiB: +(sums.oldGenLimit / MiB).toFixed(1),
    };
    results.methods[method] = r;
    console.log(
      `${method.padEnd(9)} ${String(r.callsPerSec).padStart(7)} calls/s (${r.failed} failed)  promoted ${r.promotedPerCall} B/call, ` +
        `survived ${r.survivedPerCall} B/call  ${r.scavenges} scavenges, ${r.markCompacts} mark-compacts  ` +
        `GC ${r.gcMainMs} ms main thread, ${r.gcBackgroundMs} ms background, in ${SECONDS} s; ` +
        `peak RSS ${r.rssPeakMiB} MiB, old generation ${r.oldLiveMiB} MiB live, limit ${r.oldLimitMiB} MiB`,
    );
  }
} finally {
  await proxy.stop();
}
results.loadAfter = loadAverage();
console.log(`load after ${results.loadAfter}`);
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
