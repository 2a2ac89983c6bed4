// Benchmark (not a test): time from a new token's first KeyValue call to its Vault-backed
// per-caller session being ready, through one real `prismctl proxy serve` (dist/), with the Vault
// stand-in from test/support issuing REAL PostgreSQL roles and Redis ACL users. For each of N
// tokens (one device login each, this script plays the person): a new client's first Get on a
// new token (Vault login, database/creds, role creation, backend connect, the Get), then a new
// client's first Get on the same token (session cached: the connection set-up and the Get only).
// The difference is the session's cost. Tokens run one after another. Run after `npm run build`,
// with the services env (scripts/test-services.sh env):
//   npx vite-node --config bench/auth/vite-node.config.mjs bench/auth/sessions.ts -- [--tokens 40]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import {
  VaultStandin,
  loginAlice,
  postgresEndpoint,
  postgresSandbox,
  redisRole,
} from '../../test/support/vault-standin.js';
import { proxyServeArgs } from '../../test/support/server-process.js';
import { redisUrl } from '../../test/support/services.js';
import { writeVaultProxyConfig } from '../../test/support/vault-proxy.js';
// @ts-expect-error plain JS helpers shared by the benchmarks
import { loadAverage, machine, percentile, ROOT, startProcess } from '../proxy/lib.js';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '40' },
    backends: { type: 'string', default: 'postgres,redis' },
  },
  allowPositionals: true,
});
const nTokens = Number(values.tokens);
const backends = values.backends!.split(',');

const idp = new DevIdp({ accessTokenTtlSeconds: 3600 });
const issuer = await idp.start();
const suffix = `b${Date.now().toString(36)}`;
const sandbox = await postgresSandbox(suffix);
const names = Object.fromEntries(backends.map((b) => [b, `bench-${b}-${suffix}`]));
const standin = new VaultStandin({
  issuer,
  roles: {
    ...(names.postgres ? { [`${names.postgres}-cache-store`]: sandbox.role } : {}),
    ...(names.redis ? { [`${names.redis}-cache-store`]: redisRole(names.redis) } : {}),
  },
  leaseSeconds: 300,
  tokenSeconds: 300,
});
await standin.start();

const dir = mkdtempSync(join(tmpdir(), 'prism-bench-sessions-'));
const config = writeVaultProxyConfig(
  dir,
  { postgres: postgresEndpoint(), redis: redisUrl(), memstore: 'memory://' },
  Object.entries(names).map(([store, name]) => ({ name, issuer, vaultAddress: standin.address, store })),
);

const proxy = await startProcess(
  process.execPath,
  [
    ...[join(ROOT, 'bin/run.js'), ...proxyServeArgs(config)],
    ...['--log-level', 'info', '--max-caller-sessions', String(nTokens * backends.length + 10)],
    ...['--caller-session-idle', '10m'],
  ],
  'prism proxy serving',
  { env: { PRISM_HOME: dir, PRISM_VAULT_JWT: '' } },
);
const endpoint = `127.0.0.1:${proxy.ready.port}`;

const tokens: string[] = [];
for (let i = 0; i < nTokens; i++) tokens.push(await loginAlice(idp));

const firstGet = async (namespace: string, token: string): Promise<number> => {
  const client = new DataClient(endpoint, { namespace, token });
  try {
    const start = performance.now();
    await client.get('k');
    return performance.now() - start;
  } finally {
    client.close();
  }
};

const m = machine();
console.log(`machine: ${m.cores} x ${m.model}, ${m.memGiB} GiB, node ${m.node}, load ${loadAverage()}`);
console.log(`${nTokens} tokens per backend, one after another; Vault stand-in on loopback\n`);
const ms = (x: number) => `${x.toFixed(1).padStart(6)} ms`;
try {
  for (const [backend, namespace] of Object.entries(names)) {
    // One untimed token first: the proxy's JWKS fetch and the backend's first connection.
    await firstGet(namespace, await loginAlice(idp));
    const cold: number[] = [];
    const warm: number[] = [];
    for (const token of tokens) {
      cold.push(await firstGet(namespace, token));
      warm.push(await firstGet(namespace, token));
    }
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const c = sorted(cold);
    const w = sorted(warm);
    const setup = sorted(cold.map((x, i) => x - warm[i]!));
    console.log(
      `${backend.padEnd(8)} new token's first call: median ${ms(percentile(c, 50))}, p95 ${ms(percentile(c, 95))} | ` +
        `same token, new client: median ${ms(percentile(w, 50))}, p95 ${ms(percentile(w, 95))} | ` +
        `session set-up: median ${ms(percentile(setup, 50))}, p95 ${ms(percentile(setup, 95))}`,
    );
  }
} finally {
  await proxy.stop();
  await standin.close();
  await sandbox.drop();
  await idp.stop();
}
console.log(`\nload after: ${loadAverage()}`);
