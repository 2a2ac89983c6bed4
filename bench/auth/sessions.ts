// Benchmark (not a test) of Vault-backed caller sessions against the REAL OpenBao of the tests
// (scripts/test-services.sh: PRISM_TEST_VAULT_ADDR/TOKEN), PostgreSQL and Redis, through one real
// `prismctl proxy serve` (dist/). One proxy serves three namespaces with the same two keyvalue
// patterns, `cache` on PostgreSQL and `hot` on Redis:
//   open    no auth;
//   static  auth on (JWT from the dev IdP), no Vault: PostgreSQL with credentials from the
//           proxy's environment, Redis without any;
//   vault   auth on and auth.vault on: each caller's JWT logs in to OpenBao (jwt auth bound to
//           the dev IdP) and leases its own PostgreSQL role / Redis ACL user (database engine);
//           caller sessions shared through a session-manager store on Redis.
// Two measurements in the same run:
//   1. First call of a new caller, one token after another (one real device login each): a new
//      client's first Get on a new token in `vault` (JWT verify, Vault login, database/creds,
//      role or ACL user creation by OpenBao, the caller's backend connection, the Get), then a new
//      client's first Get on the same token (session ready: channel set-up and the Get). The
//      session is then revoked through the CallerSessions API, so live leases stay few, and the
//      same token logs in to OpenBao directly and reads database/creds (OpenBao's share).
//   2. Steady state: KeyValue Get driven by h2load (prebuilt gRPC frames, see bench/proxy; a C
//      client at ~0.1 core where a grpc-js client process saturates near 3k calls/s), cells
//      open / static / vault interleaved per round, the vault cell on a token whose session is
//      warm. Calls are counted by the proxy's own metrics (h2load counts HTTP 200 whatever the
//      grpc-status says), so only OK calls count; proxy CPU per call comes from /proc.
// Afterwards the proxy is stopped and the leases and leased users it held must be gone.
// Run after `npm run build` and `bash bench/proxy/setup.sh` (h2load), with the services env:
//   eval "$(bash scripts/test-services.sh env)"
//   npx vite-node --config bench/auth/vite-node.config.mjs bench/auth/sessions.ts -- [--tokens 30]
//     [--rounds 3] [--seconds 5] [--warmup 1] [--connections 8] [--streams 8] [--backends postgres,redis]
//     [--json out.json] [--proxy-log proxy.log]
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { create, toBinary } from '@bufbuild/protobuf';
import { DEV_AUDIENCE, DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { GetRequestSchema } from '../../src/gen/prism/data/v1/keyvalue_pb.js';
import { loginAs } from '../../test/support/dev-login.js';
import {
  keyValueConnectionUsers,
  postgresEndpoint,
  postgresSandbox,
} from '../../test/support/leased-postgres.js';
import { RealVault, SESSION_POLICY, vaultApi } from '../../test/support/real-vault.js';
import { proxyServeArgs, startPrismServer } from '../../test/support/server-process.js';
import {
  connectPostgres,
  connectRedis,
  postgresUrl,
  probeService,
  redisUrl,
} from '../../test/support/services.js';
import { backendsYaml } from '../../test/support/vault-proxy.js';
import {
  cpuSeconds,
  grpcFrame,
  loadAverage,
  machine,
  machineBusySeconds,
  percentile,
  runProcess,
  // @ts-expect-error plain JS helpers shared by the benchmarks
} from '../proxy/lib.js';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '30' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '8' },
    streams: { type: 'string', default: '8' },
    backends: { type: 'string', default: 'postgres,redis' },
    json: { type: 'string' },
    'proxy-log': { type: 'string' },
  },
  allowPositionals: true,
});
const nTokens = Number(values.tokens);
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const connections = Number(values.connections);
const streams = Number(values.streams);
type Backend = 'postgres' | 'redis';
const backends = values.backends!.split(',') as Backend[];
const PATTERN: Record<Backend, string> = { postgres: 'cache', redis: 'hot' };
const LABEL: Record<Backend, string> = { postgres: 'PostgreSQL', redis: 'Redis' };
const KEY = 'k';
const VALUE = Buffer.alloc(100, 'v');

for (const service of ['vault', 'postgres', 'redis'] as const) {
  const probe = await probeService(service);
  if (!probe.ok) throw new Error(`${service}: ${probe.reason}; eval "$(bash scripts/test-services.sh env)"`);
}
const h2loadVersion = await runProcess('h2load', ['--version']);
if (h2loadVersion.code !== 0) throw new Error('h2load not found: run bash bench/proxy/setup.sh');

const m = machine();
const loads = [loadAverage()];
const report = {
  command: `bench/auth/sessions.ts ${process.argv.slice(2).join(' ')}`.trim(),
  machine: m,
  startedAt: new Date().toISOString(),
  loads,
  firstCall: {} as Record<string, unknown>,
  steady: {} as Record<string, unknown>,
  leftAfterStop: undefined as unknown,
};
console.log(`machine: ${m.cores} x ${m.model}, ${m.memGiB} GiB, node ${m.node}, load ${loads[0]}`);
console.log(
  `${h2loadVersion.stdout.trim().split('\n')[0]}; OpenBao at ${process.env.PRISM_TEST_VAULT_ADDR}\n`,
);

// ---- setup: IdP, OpenBao, namespaces, the proxy ---------------------------------------------------
const idp = new DevIdp({ accessTokenTtlSeconds: 3600 });
const issuer = await idp.start();
const vault = await RealVault.create();
const sandbox = await postgresSandbox(vault.suffix);
const ns = {
  open: `bench-open-${vault.suffix}`,
  static: `bench-static-${vault.suffix}`,
  vault: `bench-vault-${vault.suffix}`,
};
const role = `prism-${ns.vault}`;
const dir = mkdtempSync(join(tmpdir(), 'prism-bench-sessions-'));
const aclBefore = new Set(await redisAclUsers());
let proxy: Awaited<ReturnType<typeof startPrismServer>> | undefined;

try {
  // The proxy's service identity (to revoke sessions of a departed proxy) and every caller log in
  // to the namespace's role, as in test/e2e/shared-sessions.test.ts.
  const policy = await vault.policy(
    vault.name('bench'),
    `${SESSION_POLICY}path "auth/token/revoke-accessor" { capabilities = ["update"] }\n`,
  );
  const mount = await vault.jwtAuth({
    issuer,
    roles: { [role]: { audiences: [DEV_AUDIENCE], policies: [policy] } },
  });
  await vault.postgresConnection(vault.name('pg'), { allowedRoles: [`${role}-*`] });
  await vault.postgresRole(`${role}-cache-store`, {
    db: vault.name('pg'),
    creation: sandbox.creation,
    revocation: sandbox.revocation,
  });
  await vault.redisConnection(vault.name('redis'), { allowedRoles: [`${role}-*`] });
  await vault.redisRole(`${role}-hot-store`, { db: vault.name('redis'), keyPrefix: `${ns.vault}:` });

  // Without Vault, PostgreSQL credentials come from the proxy's environment (never the catalog).
  const patterns = (pgCredentials: boolean) => [
    'patterns:',
    `  - { name: cache, type: keyvalue, slots: { store: { backend: postgres${pgCredentials ? ', credentials: "${PRISM_BENCH_PG_CREDENTIALS}"' : ''} } } }`,
    '  - { name: hot, type: keyvalue, slots: { store: { backend: redis } } }',
  ];
  const auth = ['auth:', '  enabled: true', `  issuer: ${issuer}`, `  audiences: [${DEV_AUDIENCE}]`];
  const yaml = (lines: string[]) => [...lines, ''].join('\n');
  const files = { namespaces: join(dir, 'namespaces'), backends: join(dir, 'backends.yaml') };
  mkdirSync(files.namespaces);
  writeFileSync(
    join(files.namespaces, 'open.yaml'),
    yaml([`namespace: ${ns.open}`, 'team: commerce', ...patterns(true)]),
  );
  writeFileSync(
    join(files.namespaces, 'static.yaml'),
    yaml([`namespace: ${ns.static}`, 'team: commerce', ...patterns(true), ...auth]),
  );
  writeFileSync(
    join(files.namespaces, 'vault.yaml'),
    yaml([
      `namespace: ${ns.vault}`,
      'team: commerce',
      ...patterns(false),
      '  - name: sessions',
      '    type: session-manager',
      '    slots: { store: { backend: redis } }',
      '    settings: { session_ttl: 1h, idle_timeout: 30m }',
      ...auth,
      '  vault:',
      '    enabled: true',
      `    address: ${vault.address}`,
      `    role: ${role}`,
      `    auth_mount: ${mount}`,
    ]),
  );
  writeFileSync(files.backends, backendsYaml({ postgres: postgresEndpoint(), redis: redisUrl() }));
  const pgUrl = new URL(postgresUrl());
  const serviceJwt = join(dir, 'service.jwt');
  writeFileSync(serviceJwt, await loginAs(idp, 'dev@local.prism'), { mode: 0o600 });

  proxy = await startPrismServer(
    [
      ...proxyServeArgs(files),
      ...['--vault-jwt-file', serviceJwt, '--log-level', 'info'],
      ...['--caller-session-ttl', '1h', '--caller-session-idle', '30m'],
      ...['--max-caller-sessions', String(2 * nTokens + 10)],
    ],
    'prism proxy serving',
    {
      PRISM_VAULT_JWT: '',
      PRISM_BENCH_PG_CREDENTIALS: `${decodeURIComponent(pgUrl.username)}:${decodeURIComponent(pgUrl.password)}`,
    },
  );
  const endpoint = `127.0.0.1:${String(proxy.ready.port)}`;
  const httpPort = Number(proxy.ready.httpPort);

  const steadyToken = await loginAs(idp, 'alice@example.com');
  const tokenOf = { open: undefined, static: steadyToken, vault: steadyToken } as const;
  for (const [cell, namespace] of Object.entries(ns) as Array<[keyof typeof ns, string]>) {
    for (const backend of backends) {
      const c = new DataClient(endpoint, {
        namespace,
        pattern: PATTERN[backend],
        ...(tokenOf[cell] ? { token: tokenOf[cell] } : {}),
        timeoutMs: 30_000,
      });
      await c.set(KEY, VALUE);
      c.close();
    }
  }
  // The steady token's session (a Vault login, one lease per backend) stays open throughout.
  const admin = new DataClient(endpoint, { namespace: ns.vault, token: steadyToken, timeoutMs: 30_000 });
  const keep = new Set((await admin.listCallerSessions()).sessions.map((s) => s.id));
  if (keep.size !== 1) throw new Error(`expected the steady token's one session, found ${keep.size}`);

  // ---- 1. first call of a new caller --------------------------------------------------------------
  const firstGet = async (backend: Backend, token: string): Promise<number> => {
    const client = new DataClient(endpoint, {
      namespace: ns.vault,
      pattern: PATTERN[backend],
      token,
      timeoutMs: 30_000,
    });
    try {
      const start = performance.now();
      const got = await client.get(KEY);
      const took = performance.now() - start;
      // Each caller's Redis ACL user sees only the namespace's keys; the value is the seeded one.
      if (!got.found || got.value.length !== VALUE.length) throw new Error(`${backend}: Get missed the key`);
      return took;
    } finally {
      client.close();
    }
  };
  /** Revokes every session but the steady token's; answers how many leases went with them. */
  const revokeNew = async (): Promise<number> => {
    let leases = 0;
    for (const s of (await admin.listCallerSessions()).sessions) {
      if (keep.has(s.id)) continue;
      leases += (await admin.revokeCallerSession(s.id)).revokedLeases;
    }
    return leases;
  };

  /**
   * OpenBao alone, from this process with the same token: the caller's JWT login, then its
   * database/creds (OpenBao creates the PostgreSQL role or Redis ACL user); both revoked after.
   */
  const direct = async (backend: Backend, jwt: string): Promise<{ login: number; creds: number }> => {
    const t0 = performance.now();
    const login = await vaultApi<{ auth: { client_token: string } }>(
      'POST',
      `auth/${mount}/login`,
      { role, jwt },
      '',
      vault.address,
    );
    const t1 = performance.now();
    const token = login.auth.client_token;
    const creds = await vaultApi<{ lease_id: string }>(
      'GET',
      `database/creds/${role}-${PATTERN[backend]}-store`,
      undefined,
      token,
      vault.address,
    );
    const t2 = performance.now();
    await vault.api('PUT', 'sys/leases/revoke', { lease_id: creds.lease_id });
    await vaultApi('POST', 'auth/token/revoke-self', {}, token, vault.address);
    return { login: t1 - t0, creds: t2 - t1 };
  };

  console.log(`1. first call of a new caller: ${nTokens} tokens per backend, one after another`);
  const tokens: Record<Backend, string[]> = { postgres: [], redis: [] };
  for (const backend of backends) {
    for (let i = 0; i < nTokens; i++) tokens[backend].push(await loginAs(idp, 'alice@example.com'));
    // One untimed token first: the backend's and OpenBao's first use of this role.
    const first = await loginAs(idp, 'alice@example.com');
    await firstGet(backend, first);
    await direct(backend, first);
  }
  await revokeNew();
  const series = () => ({ postgres: [] as number[], redis: [] as number[] });
  const cold = series();
  const warm = series();
  const vaultLogin = series();
  const vaultCreds = series();
  const oddRevokes: string[] = [];
  for (let i = 0; i < nTokens; i++) {
    for (const backend of backends) {
      const token = tokens[backend][i]!;
      cold[backend].push(await firstGet(backend, token));
      warm[backend].push(await firstGet(backend, token));
      const revoked = await revokeNew();
      if (revoked !== 1) oddRevokes.push(`${backend} token ${i}: ${revoked} leases revoked`);
      const d = await direct(backend, token);
      vaultLogin[backend].push(d.login);
      vaultCreds[backend].push(d.creds);
    }
  }
  loads.push(loadAverage());
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const stats = (xs: number[]) => ({ median: percentile(sorted(xs), 50), p95: percentile(sorted(xs), 95) });
  const both = (xs: number[]) => `median ${ms(stats(xs).median)}, p95 ${ms(stats(xs).p95)}`;
  for (const backend of backends) {
    const difference = cold[backend].map((x, i) => x - warm[backend][i]!);
    report.firstCall[backend] = {
      firstCall: stats(cold[backend]),
      sameTokenNewClient: stats(warm[backend]),
      difference: stats(difference),
      vaultLogin: stats(vaultLogin[backend]),
      vaultCreds: stats(vaultCreds[backend]),
    };
    console.log(
      `   ${LABEL[backend]}: new caller's first call ${both(cold[backend])}\n` +
        `      same token, new client ${both(warm[backend])}; the difference (the session) ${both(difference)}\n` +
        `      OpenBao alone, same tokens: jwt login ${both(vaultLogin[backend])}; database/creds ${both(vaultCreds[backend])}`,
    );
  }
  for (const odd of oddRevokes) console.log(`   odd: ${odd}`);
  console.log(`   load ${loads.at(-1)}\n`);

  // ---- 2. steady state ------------------------------------------------------------------------------
  const body = join(dir, 'get.bin');
  writeFileSync(body, grpcFrame(toBinary(GetRequestSchema, create(GetRequestSchema, { key: KEY }))));
  const cells = ['open', 'static', 'vault'] as const;
  type Cell = (typeof cells)[number];
  const CELL: Record<Cell, string> = {
    open: '(a) auth off',
    static: '(b) auth on, no Vault',
    vault: '(c) auth on, Vault session',
  };
  const h2load = async (backend: Backend, cell: Cell, duration: number) => {
    const token = tokenOf[cell];
    const args = [
      ...['-c', String(connections), '-m', String(streams), '-t', '1', '-D', String(duration), '-d', body],
      ...['-H', 'content-type: application/grpc', '-H', 'te: trailers'],
      ...['-H', `x-prism-namespace: ${ns[cell]}`, '-H', `x-prism-pattern: ${PATTERN[backend]}`],
      ...(token ? ['-H', `authorization: Bearer ${token}`] : []),
      `http://${endpoint}/prism.data.v1.KeyValue/Get`,
    ];
    // `times` prints the children's user and system CPU: h2load's own.
    const run = await runProcess('sh', ['-c', 'h2load "$@"; rc=$?; times; exit $rc', 'h2load', ...args], {
      timeoutMs: (duration + 30) * 1000,
    });
    if (run.code !== 0) throw new Error(`h2load failed (${run.code}): ${run.stderr}\n${run.stdout}`);
    const out: string = run.stdout;
    const cpu = [...(out.trim().split('\n').at(-1) ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map(
      (t) => Number(t[1]) * 60 + Number(t[2]),
    );
    return {
      seconds: Number(/finished in ([\d.]+)s/.exec(out)?.[1] ?? NaN),
      h2loadCpu: (cpu[0] ?? NaN) + (cpu[1] ?? NaN),
      failed: Number(/(\d+) failed/.exec(out)?.[1] ?? NaN),
    };
  };
  const cellRun = async (backend: Backend, cell: Cell) => {
    await h2load(backend, cell, warmup);
    const before = await proxyCalls(httpPort, ns[cell]);
    const cpu0 = cpuSeconds([proxy!.pid]);
    const busy0 = machineBusySeconds();
    const r = await h2load(backend, cell, seconds);
    const cpu = cpuSeconds([proxy!.pid]) - cpu0;
    const busy = machineBusySeconds() - busy0;
    const after = await proxyCalls(httpPort, ns[cell]);
    if (cell === 'vault' && backend === 'postgres') {
      // The vault cell runs on the caller's leased PostgreSQL role, never on the catalog's user.
      const users = await keyValueConnectionUsers(ns.vault);
      if (users.length !== 1 || users[0] === new URL(postgresUrl()).username)
        throw new Error(
          `the vault namespace's PostgreSQL connections are as ${users.join(', ') || 'nobody'}`,
        );
    }
    const ok = (after.OK ?? 0) - (before.OK ?? 0);
    const notOk = Object.entries(after)
      .filter(([code]) => code !== 'OK')
      .map(([code, n]) => [code, n - (before[code] ?? 0)] as const)
      .filter(([, n]) => n > 0);
    return {
      rate: ok / r.seconds,
      cpuPerCallUs: (cpu / ok) * 1e6,
      proxyCores: cpu / r.seconds,
      h2loadCores: r.h2loadCpu / r.seconds,
      otherCores: (busy - cpu - r.h2loadCpu) / r.seconds,
      notOk:
        notOk.map(([code, n]) => `${n} ${code}`).join(', ') +
        (r.failed ? ` ${r.failed} failed (h2load)` : ''),
    };
  };

  console.log(
    `2. steady state: KeyValue Get, h2load -c ${connections} -m ${streams} (${connections * streams} in flight), ` +
      `${seconds} s per cell after ${warmup} s warm-up, cells interleaved, ${rounds} rounds`,
  );
  type Result = Awaited<ReturnType<typeof cellRun>>;
  const results: Record<Backend, Record<Cell, Result[]>> = {
    postgres: { open: [], static: [], vault: [] },
    redis: { open: [], static: [], vault: [] },
  };
  // Untimed: every cell once, so that no cell pays the proxy's JIT or a pool's growth.
  for (const backend of backends) for (const cell of cells) await h2load(backend, cell, 2 * warmup);
  for (let round = 1; round <= rounds; round++) {
    for (const backend of backends) {
      // Rotate the order so that no cell always runs first or last.
      const order = cells.map((_, i) => cells[(i + round - 1) % cells.length]!);
      for (const cell of order) {
        const r = await cellRun(backend, cell);
        results[backend][cell].push(r);
        console.log(
          `   round ${round} ${LABEL[backend].padEnd(10)} ${CELL[cell].padEnd(27)} ${r.rate.toFixed(0).padStart(6)} ops/s  ` +
            `proxy ${r.cpuPerCallUs.toFixed(0).padStart(4)} µs CPU/call (${r.proxyCores.toFixed(2)} cores)  ` +
            `h2load ${r.h2loadCores.toFixed(2)}, other ${r.otherCores.toFixed(2)} cores${r.notOk ? `  NOT OK: ${r.notOk}` : ''}`,
        );
      }
    }
    loads.push(loadAverage());
    console.log(`   load ${loads.at(-1)}`);
  }

  const median = (xs: number[]) => percentile(sorted(xs), 50);
  console.log('\nmedians over the rounds (ratios: median of the per-round ratios):');
  for (const backend of backends) {
    const r = results[backend];
    const rate = (cell: Cell) => median(r[cell].map((x) => x.rate));
    const cpuUs = (cell: Cell) => median(r[cell].map((x) => x.cpuPerCallUs));
    const ratio = (cell: Cell) => median(r[cell].map((x, i) => x.rate / r.open[i]!.rate));
    report.steady[backend] = {
      opsPerSecond: { a: rate('open'), b: rate('static'), c: rate('vault') },
      ratios: { 'b/a': ratio('static'), 'c/a': ratio('vault') },
      proxyCpuUsPerCall: { a: cpuUs('open'), b: cpuUs('static'), c: cpuUs('vault') },
      rounds: r,
    };
    console.log(
      `   ${LABEL[backend].padEnd(10)} ops/s: (a) ${rate('open').toFixed(0)}, (b) ${rate('static').toFixed(0)}, (c) ${rate('vault').toFixed(0)}; ` +
        `(b)/(a) ${ratio('static').toFixed(3)}, (c)/(a) ${ratio('vault').toFixed(3)}; ` +
        `proxy µs CPU/call: (a) ${cpuUs('open').toFixed(0)}, (b) ${cpuUs('static').toFixed(0)}, (c) ${cpuUs('vault').toFixed(0)}`,
    );
  }
  admin.close();
} finally {
  // ---- the proxy stops: every lease and leased user it held must be gone --------------------------
  if (proxy) {
    const stopped = performance.now();
    const code = await proxy.stop();
    const roles = [`${role}-cache-store`, `${role}-hot-store`];
    let left: { leases: number; pgRoles: number; aclUsers: number } = {
      leases: -1,
      pgRoles: -1,
      aclUsers: -1,
    };
    const deadline = performance.now() + 20_000;
    do {
      left = {
        leases: (await Promise.all(roles.map((r) => vault.leases(r)))).flat().length,
        pgRoles: await sandboxMembers(sandbox.owner),
        aclUsers: (await redisAclUsers()).filter((u) => !aclBefore.has(u)).length,
      };
      if (left.leases + left.pgRoles + left.aclUsers === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    } while (performance.now() < deadline);
    console.log(
      `\nproxy stopped (exit ${code}); ${((performance.now() - stopped) / 1000).toFixed(1)} s later: ` +
        `${left.leases} leases, ${left.pgRoles} leased PostgreSQL roles, ${left.aclUsers} leased Redis ACL users left`,
    );
    report.leftAfterStop = { exitCode: code, ...left };
    if (values['proxy-log']) writeFileSync(values['proxy-log'], proxy.logs());
    if (code !== 0) console.log(proxy.logs().slice(-4000));
  }
  await cleanUp().catch((err: unknown) => console.log(`clean-up: ${String(err)}`));
  await vault.close();
  await sandbox.drop();
  await idp.stop();
}
loads.push(loadAverage());
console.log(
  `load average (1/5/15 min) at start, after phase 1, after each round, at end: ${loads.join(' | ')}`,
);
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);

/** OK and other calls the proxy counted for a namespace, by code. */
async function proxyCalls(port: number, namespace: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const codes: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('prism_proxy_requests_total{') || !line.includes(`namespace="${namespace}"`))
      continue;
    const code = /code="([^"]+)"/.exec(line)?.[1] ?? '?';
    codes[code] = (codes[code] ?? 0) + Number(line.split(' ').pop());
  }
  return codes;
}

async function redisAclUsers(): Promise<string[]> {
  const redis = connectRedis();
  try {
    return (await redis.call('ACL', 'USERS')) as string[];
  } finally {
    redis.disconnect();
  }
}

/** Login roles in the sandbox owner's group: the leased PostgreSQL roles still there. */
async function sandboxMembers(owner: string): Promise<number> {
  const client = await connectPostgres();
  try {
    const rows = await client.query(
      `SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
       WHERE g.rolname = $1 AND u.rolname <> current_user`,
      [owner],
    );
    return rows.rowCount ?? 0;
  } finally {
    await client.end();
  }
}

/** The rows and keys the benchmark's namespaces left in PostgreSQL's public schema and in Redis. */
async function cleanUp(): Promise<void> {
  const client = await connectPostgres();
  try {
    await client.query('DELETE FROM prism_kv WHERE namespace = ANY($1)', [[ns.open, ns.static]]);
  } finally {
    await client.end();
  }
  // Every key of the three namespaces: the values and the vault namespace's session store, so the
  // next run starts clean.
  const redis = connectRedis();
  try {
    for (const n of Object.values(ns)) {
      for await (const keys of redis.scanStream({ match: `${n}:*`, count: 100 }))
        if ((keys as string[]).length > 0) await redis.del(...(keys as string[]));
    }
  } finally {
    redis.disconnect();
  }
}
