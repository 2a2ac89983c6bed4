#!/usr/bin/env node
// Benchmark (not a test): the cost of Cedar policy evaluation (issue 21), in the same run.
//  1. In process, per decision: the owners/consumers rule that Cedar replaced (src/auth/authorize.ts,
//     "policy off"), the Cedar default set answered from the decision cache, the same set
//     evaluated by Cedar (cache bypassed: a new principal per call), and a set of custom policies
//     that read the key and the context (time, token age), which is never cached.
//  2. Through one real `prismctl proxy serve`: KeyValue Get on three auth-enabled memstore
//     namespaces, cells alternating: `defaults` (owners/consumers only), `context` (policies
//     reading the key, hour and token age: cached per value) and `time` (a policy reading
//     context.time: evaluated by Cedar on every call); ops/s, proxy CPU per call, and the proxy's
//     own prism_policy_evaluation_seconds (mean time per decision, cached and not).
// Tokens: ES256 JWTs from a loopback issuer (discovery + JWKS) made here, verified by the proxy
// like any other. Run after `npm run build`:
//   node bench/auth/policy.js [--seconds 4] [--concurrency 64] [--rounds 3] [--decisions 20000]
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds, loadAverage, machine, ROOT, startProcess } from '../proxy/lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    decisions: { type: 'string', default: '20000' },
    worker: { type: 'string' },
  },
});

const { DataClient } = await import(join(ROOT, 'dist/client/data-client.js'));

if (values.worker) {
  const job = JSON.parse(values.worker);
  const client = new DataClient(job.endpoint, { namespace: job.namespace, token: job.token });
  await client.get('reports/k');
  let ops = 0;
  let errors = 0;
  const deadline = performance.now() + job.seconds * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      try {
        await client.get('reports/k');
        ops++;
      } catch {
        errors++;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  const elapsed = (performance.now() - start) / 1000;
  client.close();
  process.send({ ops, errors, elapsed });
  process.exit(0);
}

const { create } = await import('@bufbuild/protobuf');
const { exportJWK, generateKeyPair, SignJWT } = await import('jose');
const { NamespaceRequestSchema, Permission } = await import(
  join(ROOT, 'dist/gen/prism/config/v1/namespace_pb.js')
);
const { authorize } = await import(join(ROOT, 'dist/auth/authorize.js'));
const { CompiledPolicySet } = await import(join(ROOT, 'dist/auth/policy/policy-set.js'));
const { splitPolicies } = await import(join(ROOT, 'dist/auth/policy/source-check.js'));
const { defaultNamespacePolicies } = await import(join(ROOT, 'dist/auth/policy/defaults.js'));
const { dataActionOf } = await import(join(ROOT, 'dist/auth/policy/model.js'));

// Reads the key, the hour and the token age: cached per (key, hour, age in whole seconds).
const CONTEXT = `@id("analysts-reports")
permit (principal in Prism::Group::"analysts", action in Prism::Action::"read", resource is Prism::Key)
when { resource.key like "reports/*" && context.hour >= 0 };
@id("fresh-tokens")
forbid (principal, action, resource)
when { context has token_age_seconds && context.token_age_seconds > 43200 };
`;
// Reads context.time: evaluated by Cedar on every call.
const TIME = `@id("after-2000")
permit (principal in Prism::Group::"analysts", action in Prism::Action::"read", resource is Prism::Key)
when { context.time > datetime("2000-01-01T00:00:00Z") };
`;

const m = machine();
console.log(`machine: ${m.cores} x ${m.model}, ${m.memGiB} GiB, node ${m.node}, load ${loadAverage()}\n`);

// 1. In process.
const n = Number(values.decisions);
const ns = create(NamespaceRequestSchema, {
  namespace: 'bench',
  team: 'commerce',
  access: {
    owners: [{ team: 'commerce' }],
    consumers: [{ subject: 'group:analysts', permissions: [Permission.READ] }],
  },
});
const who = { subject: 'ann', groups: ['analysts'], tenant: '', scopes: [], claims: {} };
const resource = { kind: 'Key', namespace: 'bench', pattern: 'cache', key: 'reports/k' };
const get = dataActionOf('Get');
const perDecision = (label, fn) => {
  for (let i = 0; i < Math.min(n, 2000); i++) fn(i);
  const start = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  const us = ((performance.now() - start) * 1000) / n;
  console.log(`${label.padEnd(58)} ${us.toFixed(2).padStart(8)} µs/decision`);
  return us;
};
const defaults = new CompiledPolicySet(defaultNamespacePolicies(ns));
const withContextSet = new CompiledPolicySet([
  ...defaultNamespacePolicies(ns),
  ...splitPolicies(CONTEXT, 'context'),
]);
const withTimeSet = new CompiledPolicySet([...defaultNamespacePolicies(ns), ...splitPolicies(TIME, 'time')]);
const now = { now: new Date() };
console.log(`in process, ${n} decisions each (KeyValue Get, key reports/k):`);
const off = perDecision('policy off: owners/consumers rule (authorize.ts)', () => authorize(ns, who, 'Get'));
const cached = perDecision('Cedar default set, decision cache hit', () =>
  defaults.evaluate(get, who, resource, now),
);
const evaluated = perDecision('Cedar default set, evaluated (new principal each call)', (i) =>
  defaults.evaluate(get, { ...who, subject: `u${i}` }, resource, now),
);
const issuedAt = Math.floor(Date.now() / 1000) - 60;
const withContext = perDecision('Cedar + policies reading key, hour, token age (cached)', () =>
  withContextSet.evaluate(get, { ...who, issuedAt }, resource, now),
);
const withTime = perDecision('Cedar + a policy reading context.time (never cached)', () =>
  withTimeSet.evaluate(get, who, resource, { now: new Date() }),
);
console.log(
  `added per call vs policy off: cached +${(cached - off).toFixed(1)} µs, evaluated +${(evaluated - off).toFixed(1)} µs, key/hour/age +${(withContext - off).toFixed(1)} µs, time +${(withTime - off).toFixed(1)} µs (goal <= +50 µs)\n`,
);

// 2. Through the proxy.
const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
let issuer = '';
const idp = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  if (req.url === '/jwks') res.end(JSON.stringify({ keys: [jwk] }));
  else res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
});
await new Promise((r) => idp.listen(0, '127.0.0.1', r));
issuer = `http://127.0.0.1:${idp.address().port}`;
const token = await new SignJWT({ groups: ['analysts'] })
  .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
  .setSubject('ann')
  .setIssuer(issuer)
  .setAudience('prism')
  .setIssuedAt()
  .setExpirationTime('2h')
  .sign(privateKey);

const dir = mkdtempSync(join(tmpdir(), 'prism-bench-policy-'));
const nsYaml = (name, policyFile) =>
  `namespace: ${name}\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\nauth:\n  enabled: true\n  issuer: ${issuer}\n  audiences: [prism]\naccess:\n  owners: [{ team: commerce }]\n  consumers: [{ subject: 'group:analysts', permissions: [read] }]\n${policyFile ? `  policies:\n    - file: ${policyFile}\n` : ''}`;
writeFileSync(join(dir, 'context.cedar'), CONTEXT);
writeFileSync(join(dir, 'time.cedar'), TIME);
writeFileSync(join(dir, 'defaults.yaml'), nsYaml('bench-defaults'));
writeFileSync(join(dir, 'context.yaml'), nsYaml('bench-context', 'context.cedar'));
writeFileSync(join(dir, 'time.yaml'), nsYaml('bench-time', 'time.cedar'));
const home = mkdtempSync(join(tmpdir(), 'prism-bench-policy-home-'));
const proxy = await startProcess(
  process.execPath,
  [
    ...[join(ROOT, 'bin/run.js'), 'proxy', 'serve', '--namespaces', dir],
    ...[
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--log-level',
      'info',
      '--policy-log-sample',
      '0',
    ],
  ],
  'prism proxy serving',
  { env: { PRISM_HOME: home } },
);
const endpoint = `127.0.0.1:${proxy.ready.port}`;
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const cell = async (namespace) => {
  const cpuBefore = cpuSeconds([proxy.child.pid]);
  const result = await new Promise((resolve, reject) => {
    const job = { endpoint, namespace, token, seconds, concurrency };
    const child = fork(fileURLToPath(import.meta.url), ['--worker', JSON.stringify(job)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', resolve);
    child.once('exit', (code) => code !== 0 && reject(new Error(`client exited ${code}`)));
  });
  return {
    rate: result.ops / result.elapsed,
    errors: result.errors,
    cpuUs: ((cpuSeconds([proxy.child.pid]) - cpuBefore) / result.ops) * 1e6,
  };
};
const CELLS = ['defaults', 'context', 'time'];
const rates = { defaults: [], context: [], time: [] };
const cpus = { defaults: [], context: [], time: [] };
try {
  console.log(`through the proxy: KeyValue Get, memstore, ${concurrency} in flight, ${seconds} s per cell`);
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const label of CELLS) {
      const r = await cell(`bench-${label}`);
      rates[label].push(r.rate);
      cpus[label].push(r.cpuUs);
      console.log(
        `round ${round}  ${label.padEnd(8)} ${r.rate.toFixed(0).padStart(7)} ops/s  proxy ${r.cpuUs.toFixed(0).padStart(4)} µs CPU/call${r.errors ? `  (${r.errors} errors)` : ''}`,
      );
    }
  }
  const metrics = await (await globalThis.fetch(`http://127.0.0.1:${proxy.ready.httpPort}/metrics`)).text();
  for (const label of ['true', 'false']) {
    const sum = Number(
      new RegExp(`prism_policy_evaluation_seconds_sum\\{cached="${label}"\\} (\\S+)`).exec(metrics)?.[1] ??
        NaN,
    );
    const count = Number(
      new RegExp(`prism_policy_evaluation_seconds_count\\{cached="${label}"\\} (\\S+)`).exec(metrics)?.[1] ??
        NaN,
    );
    console.log(
      `proxy prism_policy_evaluation_seconds cached=${label}: ${count} decisions, mean ${((sum / count) * 1e6).toFixed(1)} µs`,
    );
  }
} finally {
  await proxy.stop();
  idp.close();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(rates.defaults);
console.log(
  `\nmedian ops/s: ${CELLS.map((c) => `${c} ${median(rates[c]).toFixed(0)} (${(median(rates[c]) / base).toFixed(3)} of defaults)`).join(', ')}`,
);
console.log(
  `proxy CPU per call (median): ${CELLS.map((c) => `${c} ${median(cpus[c]).toFixed(0)} µs`).join(', ')}`,
);
console.log(`load after: ${loadAverage()}`);
