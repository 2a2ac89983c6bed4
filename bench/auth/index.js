#!/usr/bin/env node
// Benchmark (not a test): KeyValue Get through one real `prismctl proxy serve` with auth on vs off
// in the same run. The proxy serves two memstore namespaces, one without auth and one with auth
// against the development IdP (ES256 JWTs, JWKS fetched once); the token comes from a real device
// login (this script plays the person). Cells alternate off/on/off/on so drift hits both alike.
// Each cell: --concurrency calls in flight, spread over --clients child processes (one gRPC
// connection each), for --seconds. Run after `npm run build`:
//   node bench/auth/index.js [--seconds 4] [--concurrency 64] [--clients 1] [--rounds 2]
import { fork } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, URL, URLSearchParams } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds, loadAverage, machine, ROOT, startProcess } from '../proxy/lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '64' },
    clients: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '2' },
    // Internal: this process is one load-generating client.
    worker: { type: 'string' },
  },
});

const { DataClient } = await import(join(ROOT, 'dist/client/data-client.js'));

if (values.worker) {
  // Client role: { endpoint, namespace, token, seconds, concurrency } in argv.
  const job = JSON.parse(values.worker);
  // gRPC-js pools subchannels per process: the clients of one process share one connection, so
  // more connections means more client processes (--clients).
  const clients = [new DataClient(job.endpoint, { namespace: job.namespace, token: job.token })];
  await Promise.all(clients.map((c) => c.get('k')));
  let ops = 0;
  let errors = 0;
  const deadline = performance.now() + job.seconds * 1000;
  const loop = async (client) => {
    while (performance.now() < deadline) {
      try {
        await client.get('k');
        ops++;
      } catch {
        errors++;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, () => loop(clients[0])));
  const elapsed = (performance.now() - start) / 1000;
  for (const c of clients) c.close();
  process.send({ ops, errors, elapsed });
  process.exit(0);
}

const { DevIdp, DEV_AUDIENCE } = await import(join(ROOT, 'dist/auth/dev-idp.js'));
const { deviceLogin } = await import(join(ROOT, 'dist/auth/login.js'));
const { DEFAULT_SCOPES } = await import(join(ROOT, 'dist/auth/oidc-config.js'));
const { TokenCache } = await import(join(ROOT, 'dist/auth/token-cache.js'));

const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const nClients = Number(values.clients);
const rounds = Number(values.rounds);

const idp = new DevIdp({ accessTokenTtlSeconds: 3600 });
const issuer = await idp.start();
const home = mkdtempSync(join(tmpdir(), 'prism-bench-auth-'));
const { accessToken } = await deviceLogin(
  { issuer, clientId: 'prismctl', scopes: DEFAULT_SCOPES },
  new TokenCache(home),
  (p) => void approve(p.verificationUri, p.userCode, 'alice@example.com'),
  { intervalSeconds: 0.05 },
);

const dir = mkdtempSync(join(tmpdir(), 'prism-bench-auth-ns-'));
const ns = (name, auth) =>
  `namespace: ${name}\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n${auth ? `auth:\n  enabled: true\n  issuer: ${issuer}\n  audiences: [${DEV_AUDIENCE}]\n` : ''}`;
writeFileSync(join(dir, 'open.yaml'), ns('bench-open', false));
writeFileSync(join(dir, 'authed.yaml'), ns('bench-authed', true));

const proxy = await startProcess(
  process.execPath,
  [
    ...[join(ROOT, 'bin/run.js'), 'proxy', 'serve', '--namespaces', dir],
    ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--log-level', 'info'],
  ],
  'prism proxy serving',
  { env: { PRISM_HOME: home } },
);
const endpoint = `127.0.0.1:${proxy.ready.port}`;

// Seed the key in both namespaces.
for (const [namespace, token] of [
  ['bench-open', undefined],
  ['bench-authed', accessToken],
]) {
  const c = new DataClient(endpoint, { namespace, token });
  await c.set('k', Buffer.from('v'.repeat(64)));
  c.close();
}

const m = machine();
console.log(`machine: ${m.cores} x ${m.model}, ${m.memGiB} GiB, node ${m.node}, load ${loadAverage()}`);
console.log(
  `KeyValue Get, memstore, ${concurrency} in flight over ${nClients} client process(es) (one connection each), ${seconds} s per cell\n`,
);

const cell = async (namespace, token) => {
  const cpuBefore = cpuSeconds([proxy.child.pid]);
  const per = Math.ceil(concurrency / nClients);
  const results = await Promise.all(
    Array.from(
      { length: nClients },
      () =>
        new Promise((resolve, reject) => {
          const job = { endpoint, namespace, token, seconds, concurrency: per };
          const child = fork(fileURLToPath(import.meta.url), ['--worker', JSON.stringify(job)], {
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          });
          child.once('message', resolve);
          child.once('exit', (code) => code !== 0 && reject(new Error(`client exited ${code}`)));
        }),
    ),
  );
  const ops = results.reduce((s, r) => s + r.ops, 0);
  const errors = results.reduce((s, r) => s + r.errors, 0);
  const elapsed = Math.max(...results.map((r) => r.elapsed));
  // Proxy CPU per call: the cost of auth even when the client, not the proxy, is the bottleneck.
  const cpuPerCallUs = ((cpuSeconds([proxy.child.pid]) - cpuBefore) / ops) * 1e6;
  return { rate: ops / elapsed, errors, cpuPerCallUs };
};

const totals = { off: [], on: [] };
const cpu = { off: [], on: [] };
try {
  for (let round = 1; round <= rounds; round++) {
    for (const [label, namespace, token] of [
      ['off', 'bench-open', undefined],
      ['on', 'bench-authed', accessToken],
    ]) {
      const { rate, errors, cpuPerCallUs } = await cell(namespace, token);
      totals[label].push(rate);
      cpu[label].push(cpuPerCallUs);
      console.log(
        `round ${round}  auth ${label.padEnd(3)}  ${rate.toFixed(0).padStart(7)} ops/s  proxy ${cpuPerCallUs.toFixed(0).padStart(4)} µs CPU/call${errors ? `  (${errors} errors)` : ''}`,
      );
    }
  }
} finally {
  await proxy.stop();
  await idp.stop();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const off = median(totals.off);
const on = median(totals.on);
console.log(
  `\nmedian: auth off ${off.toFixed(0)} ops/s, auth on ${on.toFixed(0)} ops/s, on/off ${(on / off).toFixed(3)} (cost ${((1 - on / off) * 100).toFixed(1)}%, goal <= 10%)`,
);
console.log(
  `proxy CPU per call (median): auth off ${median(cpu.off).toFixed(0)} µs, auth on ${median(cpu.on).toFixed(0)} µs`,
);
console.log(`load after: ${loadAverage()}`);

/** Plays the person in a device login against the dev IdP over plain HTTP (as the tests do). */
async function approve(verificationUri, userCode, login) {
  const jar = new Map();
  const request = async (url, form) => {
    const res = await globalThis.fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      if (pair.slice(eq + 1) === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(pair.slice(0, eq));
      else jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return res;
  };
  const settle = async (url, res) => {
    while (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location'), url).toString();
      res = await request(url);
    }
    return { url, body: await res.text() };
  };
  const xsrfOf = (html) => /name="xsrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const xsrf = xsrfOf(await (await request(verificationUri)).text());
  const confirm = await (await request(verificationUri, { xsrf, user_code: userCode })).text();
  let page = await settle(
    verificationUri,
    await request(verificationUri, { xsrf: xsrfOf(confirm), user_code: userCode, confirm: 'yes' }),
  );
  for (let step = 0; step < 4; step++) {
    const prompt = /name="prompt" value="(\w+)"/.exec(page.body)?.[1];
    if (!prompt) return;
    const form = prompt === 'login' ? { prompt, login, password: 'dev' } : { prompt };
    page = await settle(page.url, await request(page.url, form));
  }
}
