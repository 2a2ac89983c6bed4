#!/usr/bin/env node
// Benchmark (not a test) of envelope encryption (issue 20, item 4): publish throughput of a
// producer whose pattern sets `encryption` (AES-256-GCM under a data key from the real Vault's
// transit engine, OpenBao) as a ratio of the same producer without it, in the same run
// (goal >= 0.7).
//
// Both producers are built by createRunner, as the proxy builds them, on the same backend (Redis
// Streams by default), and publish --count messages of --size bytes with --concurrency publishes
// in flight. Plain and encrypted runs alternate for --rounds rounds after a warm-up; the medians are
// compared. The encrypting producer takes one data key from Vault and reuses it (its default
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

function producer(encrypted) {
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
  const assignment = create(cfg.PatternAssignmentSchema, {
    name: 'events',
    type: 'producer',
    slots: [create(cfg.SlotAssignmentSchema, { slot: 'sink', backend: values.backend, endpoint })],
  });
  const quiet = { info() {}, warn() {}, error: (obj, msg) => console.error(msg, obj) };
  return createRunner(ns, 'events', assignment, { vault: access, logger: quiet });
}

const session = { subject: 'svc:bench', tenant: '', roles: [] };
const payload = randomBytes(SIZE);

/** Publishes `count` messages with CONCURRENCY in flight; messages per second and CPU µs per message. */
async function publishRun(runner, count) {
  let next = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  const worker = async () => {
    while (next < count) {
      next++;
      await runner.publish({ payload, headers: { 'order-id': String(next) } }, session);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const used = process.cpuUsage(cpu);
  return { rate: count / ((performance.now() - start) / 1000), cpuUs: (used.user + used.system) / count };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

const plain = producer(false);
const sealed = producer(true);
const loadBefore = loadavg();
try {
  await plain.start();
  await sealed.start();
  await publishRun(plain, Math.min(500, COUNT));
  await publishRun(sealed, Math.min(500, COUNT));
  const results = { plain: [], encrypted: [] };
  for (let round = 0; round < ROUNDS; round++) {
    results.plain.push(await publishRun(plain, COUNT));
    results.encrypted.push(await publishRun(sealed, COUNT));
  }
  const loadAfter = loadavg();
  const p = median(results.plain.map((r) => r.rate));
  const e = median(results.encrypted.map((r) => r.rate));
  const pc = median(results.plain.map((r) => r.cpuUs));
  const ec = median(results.encrypted.map((r) => r.cpuUs));
  console.log(
    `# Envelope encryption: publish throughput, ${values.backend}, ${COUNT} × ${SIZE} B, ${CONCURRENCY} in flight, median of ${ROUNDS}`,
  );
  console.log(`node ${process.version}, ${cpus().length} cores, ${new Date().toISOString()}`);
  console.log(
    `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' / ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' / ')}`,
  );
  console.log('');
  console.log('| producer | rounds (msg/s) | median msg/s | median CPU µs/msg (this process) |');
  console.log('| --- | --- | --- | --- |');
  for (const [name, runs, rate, cpuUs] of [
    ['plain', results.plain, p, pc],
    ['encrypted', results.encrypted, e, ec],
  ]) {
    console.log(
      `| ${name} | ${runs.map((r) => fmt(r.rate)).join(', ')} | ${fmt(rate)} | ${cpuUs.toFixed(1)} |`,
    );
  }
  console.log('');
  console.log(
    `ratio encrypted ÷ plain: ${(e / p).toFixed(2)} (goal >= 0.7) ${e / p >= 0.7 ? 'MET' : 'NOT MET'}`,
  );
} finally {
  await plain.stop().catch(() => undefined);
  await sealed.stop().catch(() => undefined);
  await vault('POST', 'auth/token/revoke', { token }).catch(() => undefined);
  await vault('DELETE', `sys/mounts/${mount}`).catch(() => undefined);
  await vault('DELETE', `sys/policies/acl/${policy}`).catch(() => undefined);
}
