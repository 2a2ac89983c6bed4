#!/usr/bin/env node
// Benchmark (not a test) of envelope encryption (issue 20, item 4): publish throughput of a
// producer whose pattern sets `encryption` (AES-256-GCM under a data key from the real Vault's
// transit engine, OpenBao) as a ratio of the same producer without it, in the same run
// (goal >= 0.7).
//
// Two namespaces on the same backend (Redis Streams by default), one producer each, publish
// --count messages of --size bytes with --concurrency publishes in flight, at two levels:
//   runner  the producer runner alone (createRunner, as the proxy builds it): encryption's share
//           of the work is largest here;
//   proxy   Publish calls of a grpc-js DataClient through a proxy (ProxyServer and NamespaceTable,
//           in this process), i.e. what a caller sees.
// Plain and encrypted runs alternate for --rounds rounds after a warm-up; the medians are
// compared. CPU µs per message is this process's (at the proxy level: client and proxy). The encrypting producer takes one data key from Vault and reuses it (its default
// bounds: 5 minutes, 100,000 messages), so a run measures the per-message cost: AES-GCM, the
// nonce, the headers.
//
// Run after building, with the test services up (Vault = PRISM_TEST_VAULT_ADDR/TOKEN):
//   npx tsc -p tsconfig.build.json
//   eval "$(bash scripts/test-services.sh env)"
//   node bench/messages/encryption.js [--backend redis|nats|postgres|kafka] [--count 5000]
import { randomBytes } from 'node:crypto';
import { loadavg, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { create } from '@bufbuild/protobuf';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'redis' },
    count: { type: 'string', default: '5000' },
    size: { type: 'string', default: '256' },
    concurrency: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
  },
});
const COUNT = Number(values.count);
const SIZE = Number(values.size);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const env = process.env;
const ENDPOINTS = {
  redis: env.PRISM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  nats: env.PRISM_TEST_NATS_URL ?? 'nats://127.0.0.1:4222',
  postgres: env.PRISM_TEST_POSTGRES_URL ?? 'postgres://prism:prism@127.0.0.1:5432/prism_test',
  kafka: `kafka://${env.PRISM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092'}`,
};
const endpoint = ENDPOINTS[values.backend];
if (!endpoint) throw new Error(`--backend is one of ${Object.keys(ENDPOINTS).join(', ')}`);
const vaultAddress = env.PRISM_TEST_VAULT_ADDR;
const rootToken = env.PRISM_TEST_VAULT_TOKEN;
if (!vaultAddress || !rootToken) throw new Error('set PRISM_TEST_VAULT_ADDR and PRISM_TEST_VAULT_TOKEN');

const load = (p) => import(join(root, 'dist', p));
const { createRunner } = await load('runners/create-runner.js');
const { VaultClient } = await load('auth/vault-client.js');
const { VaultSession } = await load('auth/vault-sessions.js');
const cfg = await load('gen/prism/config/v1/namespace_pb.js');
const { inProcessRunners, NamespaceTable } = await load('proxy/namespace-table.js');
const { ProxyServer } = await load('proxy/server.js');
const { DataClient } = await load('client/data-client.js');

/** A root-token call to the test Vault, for the fixture only. */
async function vault(method, path, body) {
  const res = await globalThis.fetch(`${vaultAddress}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': rootToken, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Vault ${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : {};
}

const suffix = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const mount = `bench-transit-${suffix}`;
const policy = `bench-encryption-${suffix}`;
await vault('POST', `sys/mounts/${mount}`, { type: 'transit' });
await vault('POST', `${mount}/keys/orders`, {});
await vault('PUT', `sys/policies/acl/${policy}`, {
  policy: `path "${mount}/datakey/plaintext/orders" { capabilities = ["update"] }\n`,
});
// A token with only that policy stands in for the service identity's login (the login itself is
// paid once per process and is not what this measures).
const token = (await vault('POST', 'auth/token/create', { policies: [policy], ttl: '1h' })).auth.client_token;
const client = new VaultClient({ address: vaultAddress });
const access = {
  session: async () => VaultSession.resume(client, token),
  defaults: { address: vaultAddress },
};

const quiet = { info() {}, warn() {}, error: (obj, msg) => console.error(msg, obj) };
const silentPino = {
  level: 'silent',
  child: () => silentPino,
  ...Object.fromEntries(['trace', 'debug', 'info', 'warn', 'error', 'fatal'].map((l) => [l, () => {}])),
};

/** The namespace (auth.vault on) and assignment of one producer, with or without encryption. */
function served(encrypted) {
  const namespace = `bench-enc-${encrypted ? 'on' : 'off'}-${suffix}`;
  const ns = create(cfg.NamespaceRequestSchema, {
    namespace,
    team: 'bench',
    auth: { vault: { enabled: true, address: vaultAddress, role: 'bench' } },
    patterns: [
      create(cfg.PatternSchema, {
        name: 'events',
        type: 'producer',
        settings: create(cfg.PatternSettingsSchema, {
          topic: 'orders',
          ...(encrypted ? { encryption: { key: `${mount}/orders` } } : {}),
        }),
      }),
    ],
  });
  const pattern = create(cfg.PatternAssignmentSchema, {
    name: 'events',
    type: 'producer',
    version: 'v1',
    slots: [create(cfg.SlotAssignmentSchema, { slot: 'sink', backend: values.backend, endpoint })],
  });
  const assignment = create(cfg.NamespaceResponseSchema, { namespace, version: 1n, patterns: [pattern] });
  return { namespace: ns, assignment, pattern };
}

const session = { subject: 'svc:bench', tenant: '', roles: [] };
const payload = randomBytes(SIZE);

/** Publishes `count` messages with CONCURRENCY in flight; messages per second and CPU µs per message. */
async function publishRun(publish, count) {
  let next = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  const worker = async () => {
    while (next < count) {
      next++;
      await publish({ payload, headers: { 'order-id': String(next) } });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const used = process.cpuUsage(cpu);
  return { rate: count / ((performance.now() - start) / 1000), cpuUs: (used.user + used.system) / count };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

/** Alternating rounds of plain and encrypted publishes; prints one table and the ratio. */
async function compare(level, publishers) {
  await publishRun(publishers.plain, Math.min(500, COUNT));
  await publishRun(publishers.encrypted, Math.min(500, COUNT));
  const results = { plain: [], encrypted: [] };
  for (let round = 0; round < ROUNDS; round++) {
    results.plain.push(await publishRun(publishers.plain, COUNT));
    results.encrypted.push(await publishRun(publishers.encrypted, COUNT));
  }
  const rate = (name) => median(results[name].map((r) => r.rate));
  const cpuUs = (name) => median(results[name].map((r) => r.cpuUs));
  console.log('');
  console.log(`## ${level}`);
  console.log('');
  console.log('| producer | rounds (msg/s) | median msg/s | median CPU µs/msg |');
  console.log('| --- | --- | --- | --- |');
  for (const name of ['plain', 'encrypted']) {
    const rounds = results[name].map((r) => fmt(r.rate)).join(', ');
    console.log(`| ${name} | ${rounds} | ${fmt(rate(name))} | ${cpuUs(name).toFixed(1)} |`);
  }
  const ratio = rate('encrypted') / rate('plain');
  console.log('');
  console.log(
    `${level}: ratio encrypted ÷ plain ${ratio.toFixed(2)} (goal >= 0.7, ${ratio >= 0.7 ? 'met' : 'NOT met'}); CPU ratio plain ÷ encrypted ${(cpuUs('plain') / cpuUs('encrypted')).toFixed(2)}`,
  );
}

const loadBefore = loadavg();
console.log(
  `# Envelope encryption: publish throughput, ${values.backend}, ${COUNT} × ${SIZE} B, ${CONCURRENCY} in flight, median of ${ROUNDS}`,
);
console.log(`node ${process.version}, ${cpus().length} cores, ${new Date().toISOString()}`);
const plainNs = served(false);
const sealedNs = served(true);
const runners = [plainNs, sealedNs].map((s) =>
  createRunner(s.namespace, 'events', s.pattern, { vault: access, logger: quiet }),
);
const table = new NamespaceTable(inProcessRunners({ vault: access, logger: quiet }), silentPino);
const proxy = new ProxyServer({
  listen: '127.0.0.1:0',
  metricsListen: '127.0.0.1:0',
  table,
  logger: silentPino,
});
const clients = [];
try {
  for (const r of runners) await r.start();
  await compare('runner', {
    plain: (m) => runners[0].publish(m, session),
    encrypted: (m) => runners[1].publish(m, session),
  });
  for (const r of runners) await r.stop();
  await table.reconcile([plainNs, sealedNs]);
  await proxy.start();
  for (const s of [plainNs, sealedNs]) {
    clients.push(
      new DataClient(`127.0.0.1:${proxy.port}`, { namespace: s.namespace.namespace, pattern: 'events' }),
    );
  }
  await compare('proxy', { plain: (m) => clients[0].publish(m), encrypted: (m) => clients[1].publish(m) });
  const loadAfter = loadavg();
  console.log('');
  console.log(
    `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' / ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' / ')}`,
  );
} finally {
  for (const c of clients) c.close();
  await proxy.stop().catch(() => undefined);
  await table.stop().catch(() => undefined);
  for (const r of runners) await r.stop().catch(() => undefined);
  await vault('POST', 'auth/token/revoke', { token }).catch(() => undefined);
  await vault('DELETE', `sys/mounts/${mount}`).catch(() => undefined);
  await vault('DELETE', `sys/policies/acl/${policy}`).catch(() => undefined);
}
