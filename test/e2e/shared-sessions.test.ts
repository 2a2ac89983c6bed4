import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEV_AUDIENCE, DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { loginAs } from '../support/dev-login.js';
import { postgresEndpoint, postgresSandbox, type PostgresSandbox } from '../support/leased-postgres.js';
import { RealVault, SESSION_POLICY } from '../support/real-vault.js';
import { proxyServeArgs, startPrismServer, type RunningServer } from '../support/server-process.js';
import { connectPostgres, connectRedis, describeWithService, redisUrl } from '../support/services.js';
import { backendsYaml } from '../support/vault-proxy.js';

/**
 * Issue #9 (the session-manager runs), done when: caller sessions live in the namespace's
 * session-manager store, so that a token's calls through two workers of one proxy share one
 * session (one Vault login, one lease per slot), `prismctl session list` shows the sessions opened
 * through both workers as one table, `session revoke` ends a session everywhere, and a proxy
 * killed with SIGKILL while holding 20 caller sessions leaves leases that a new proxy revokes:
 * `pg_roles` and Redis `ACL LIST` hold none of the leased users within one sweep interval after
 * the dead proxy's owner mark lapses. Real OpenBao, PostgreSQL and Redis; the proxy is the CLI.
 */
const SWEEP = '1s';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

async function redisAclUsers(): Promise<string[]> {
  const redis = connectRedis();
  try {
    return (await redis.call('ACL', 'USERS')) as string[];
  } finally {
    redis.disconnect();
  }
}

async function existingPgRoles(names: readonly string[]): Promise<string[]> {
  const client = await connectPostgres();
  try {
    const rows = await client.query<{ rolname: string }>(
      'SELECT rolname FROM pg_roles WHERE rolname = ANY($1)',
      [names],
    );
    return rows.rows.map((r) => r.rolname);
  } finally {
    await client.end();
  }
}

/** Users a namespace's PostgreSQL keyvalue store is connected as right now. */
async function pgConnectionUsers(namespace: string): Promise<string[]> {
  const client = await connectPostgres();
  try {
    const rows = await client.query<{ usename: string }>(
      'SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = $1',
      [`prism-kv/${namespace}`],
    );
    return rows.rows.map((r) => r.usename);
  } finally {
    await client.end();
  }
}

async function metricsText(httpPort: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
}

function keyValueCalls(metrics: string, namespace: string): number {
  return metrics
    .split('\n')
    .filter((l) => l.startsWith('prism_proxy_requests_total{') && l.includes(`namespace="${namespace}"`))
    .filter((l) => l.includes('service="KeyValue"'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

await describeWithService('vault', 'caller sessions shared through the session-manager store', () => {
  const idp = new DevIdp();
  let vault: RealVault;
  let sandbox: PostgresSandbox;
  const dir = mkdtempSync(join(tmpdir(), 'prism-shared-sessions-'));
  const ns = `shared-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
  const role = `prism-${ns}`;
  const files = { namespaces: join(dir, 'ns.yaml'), backends: join(dir, 'backends.yaml') };
  let serviceJwtFile: string;
  let cluster: RunningServer | undefined;
  /** A token whose session the stopped cluster held. */
  let carriedToken = '';
  const proxies: RunningServer[] = [];

  const client = (endpoint: string, token: string, pattern: string) =>
    new DataClient(endpoint, { namespace: ns, pattern, token, timeoutMs: 20_000 });

  /** One call on a new connection: the cluster hands connections to workers in turn. */
  const callOnce = async (endpoint: string, token: string, pattern: string, key: string) => {
    const c = client(endpoint, token, pattern);
    try {
      await c.set(key, Buffer.from('v'));
      expect(Buffer.from((await c.get(key)).value).toString()).toBe('v');
    } finally {
      c.close();
    }
  };

  const sessionList = async (endpoint: string, token: string) => {
    const res = await runCli(['session', 'list', '-n', ns, '--proxy', endpoint, '--json'], {
      env: { PRISM_TOKEN: token },
    });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    return JSON.parse(res.stdout) as {
      namespace: string;
      sessions: Array<{ id: string; subject: string; owner: string; roles: string[] }>;
    };
  };

  const startProxy = async (args: string[], ready = 'prism proxy serving') => {
    const proxy = await startPrismServer(
      [
        ...proxyServeArgs(files),
        ...['--vault-jwt-file', serviceJwtFile, '--caller-session-sweep', SWEEP],
        ...['--log-level', 'info'],
        ...args,
      ],
      ready,
    );
    proxies.push(proxy);
    return proxy;
  };

  beforeAll(async () => {
    await ensureBuilt();
    await idp.start();
    vault = await RealVault.create();
    sandbox = await postgresSandbox(vault.suffix);
    // The proxy's service identity (the JWT it logs in with to revoke a departed proxy's
    // sessions) and every caller log in to the namespace's role; its policy adds revoking a
    // token by accessor to what a session does.
    const policy = await vault.policy(
      vault.name('shared'),
      `${SESSION_POLICY}path "auth/token/revoke-accessor" { capabilities = ["update"] }\n`,
    );
    const mount = await vault.jwtAuth({
      issuer: idp.issuer,
      roles: { [role]: { audiences: [DEV_AUDIENCE], policies: [policy] } },
    });
    await vault.postgresConnection(vault.name('pg'), { allowedRoles: [`${role}-*`] });
    await vault.postgresRole(`${role}-cache-store`, {
      db: vault.name('pg'),
      creation: sandbox.creation,
      revocation: sandbox.revocation,
    });
    await vault.redisConnection(vault.name('redis'), { allowedRoles: [`${role}-*`] });
    await vault.redisRole(`${role}-hot-store`, { db: vault.name('redis'), keyPrefix: `${ns}:` });

    writeFileSync(
      files.namespaces,
      [
        `namespace: ${ns}`,
        'team: commerce',
        'patterns:',
        '  - { name: cache, type: keyvalue, slots: { store: { backend: postgres } } }',
        '  - { name: hot, type: keyvalue, slots: { store: { backend: redis } } }',
        '  - name: sessions',
        '    type: session-manager',
        '    slots: { store: { backend: redis } }',
        '    settings: { session_ttl: 10m, idle_timeout: 5m }',
        'auth:',
        '  enabled: true',
        `  issuer: ${idp.issuer}`,
        `  audiences: [${DEV_AUDIENCE}]`,
        '  vault:',
        '    enabled: true',
        `    address: ${vault.address}`,
        `    role: ${role}`,
        `    auth_mount: ${mount}`,
        '',
      ].join('\n'),
    );
    writeFileSync(files.backends, backendsYaml({ postgres: postgresEndpoint(), redis: redisUrl() }));
    serviceJwtFile = join(dir, 'service.jwt');
    writeFileSync(serviceJwtFile, await loginAs(idp, 'dev@local.prism'), { mode: 0o600 });
  }, 120_000);

  afterAll(async () => {
    for (const proxy of proxies) await proxy.stop().catch(() => undefined);
    await vault?.close();
    await sandbox?.drop();
    await idp.stop();
  }, 60_000);

  it('serves one token through two workers with one session and one lease per slot', async () => {
    cluster = await startProxy(['--workers', '2'], 'prism proxy cluster serving');
    const endpoint = `127.0.0.1:${String(cluster.ready.port)}`;
    const httpPorts = cluster.ready.httpPorts as number[];
    const alice = await loginAs(idp, 'alice@example.com');

    for (let i = 0; i < 6; i++) await callOnce(endpoint, alice, 'cache', `k${i}`);

    // Both workers served calls of this token...
    const perWorker = await Promise.all(httpPorts.map(async (p) => keyValueCalls(await metricsText(p), ns)));
    expect(perWorker.every((n) => n > 0)).toBe(true);
    // ...on one Vault lease, and one PostgreSQL user for the token.
    expect(await vault.leases(`${role}-cache-store`)).toHaveLength(1);
    expect(await pgConnectionUsers(ns)).toHaveLength(1);
    const listed = await sessionList(endpoint, alice);
    expect(listed.sessions).toHaveLength(1);
    expect(listed.sessions[0]!.roles).toEqual([`${role}-cache-store`]);
  }, 120_000);

  it('lists the sessions opened through both workers as one table', async () => {
    const endpoint = `127.0.0.1:${String(cluster!.ready.port)}`;
    const tokens = [];
    for (let i = 0; i < 4; i++) tokens.push(await loginAs(idp, 'alice@example.com'));
    for (const [i, token] of tokens.entries()) await callOnce(endpoint, token, 'cache', `t${i}`);

    const listed = await sessionList(endpoint, tokens[0]!);
    expect(listed.sessions).toHaveLength(5);
    expect(new Set(listed.sessions.map((s) => s.owner)).size).toBe(2);
    expect(await vault.leases(`${role}-cache-store`)).toHaveLength(5);
    // The human table is the same set of ids.
    const table = await runCli(['session', 'list', '-n', ns, '--proxy', endpoint], {
      env: { PRISM_TOKEN: tokens[0]! },
    });
    for (const s of listed.sessions) expect(table.stdout).toContain(s.id);
  }, 120_000);

  it('lets only the namespace’s admins list and revoke its sessions', async () => {
    const endpoint = `127.0.0.1:${String(cluster!.ready.port)}`;
    const bob = await loginAs(idp, 'bob@example.com');
    const listed = await runCli(['session', 'list', '-n', ns, '--proxy', endpoint], {
      env: { PRISM_TOKEN: bob },
    });
    expect(listed.code).not.toBe(0);
    expect(listed.stderr).toMatch(/PERMISSION_DENIED|not allowed|permission/i);
    const revoked = await runCli(['session', 'revoke', '-n', ns, '--proxy', endpoint, 'no-such-id'], {
      env: { PRISM_TOKEN: bob },
    });
    expect(revoked.code).not.toBe(0);
    expect(revoked.stderr).toMatch(/PERMISSION_DENIED|not allowed|permission/i);
    const alice = await loginAs(idp, 'alice@example.com');
    const missing = await runCli(['session', 'revoke', '-n', ns, '--proxy', endpoint, 'no-such-id'], {
      env: { PRISM_TOKEN: alice },
    });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('no caller session "no-such-id"');
  }, 60_000);

  it('revokes a session on every worker: its lease and PostgreSQL role are gone', async () => {
    const endpoint = `127.0.0.1:${String(cluster!.ready.port)}`;
    const alice = await loginAs(idp, 'alice@example.com');
    await callOnce(endpoint, alice, 'cache', 'r1');
    const before = await sessionList(endpoint, alice);
    const usersBefore = await pgConnectionUsers(ns);
    const victim = before.sessions.at(-1)!;

    const revoked = await runCli(['session', 'revoke', '-n', ns, '--proxy', endpoint, victim.id, '--json'], {
      env: { PRISM_TOKEN: alice },
    });
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout)).toEqual({ namespace: ns, id: victim.id, revokedLeases: 1 });

    const after = await sessionList(endpoint, alice);
    expect(after.sessions.map((s) => s.id)).not.toContain(victim.id);
    expect(await vault.leases(`${role}-cache-store`)).toHaveLength(before.sessions.length - 1);
    const gone = await waitFor(
      'the revoked role to be dropped',
      async () => {
        const users = await pgConnectionUsers(ns);
        const dropped = usersBefore.filter((u) => !users.includes(u));
        return dropped.length === 1 && (await existingPgRoles(dropped)).length === 0 ? dropped : undefined;
      },
      10_000,
    );
    expect(gone).toHaveLength(1);
    // The caller is served again, by a new session.
    await callOnce(endpoint, alice, 'cache', 'r2');
    expect((await sessionList(endpoint, alice)).sessions).toHaveLength(before.sessions.length);
    carriedToken = alice;
    expect(await cluster!.stop()).toBe(0);
  }, 120_000);

  it('leaves no session behind a graceful stop: the next proxy serves the same token afresh', async () => {
    const next = await startProxy([]);
    const endpoint = `127.0.0.1:${String(next.ready.port)}`;
    expect((await sessionList(endpoint, carriedToken)).sessions).toEqual([]);
    expect(await vault.leases(`${role}-cache-store`)).toEqual([]);
    await callOnce(endpoint, carriedToken, 'cache', 'after-restart');
    const listed = await sessionList(endpoint, carriedToken);
    expect(listed.sessions).toHaveLength(1);
    expect(await vault.leases(`${role}-cache-store`)).toHaveLength(1);
    expect(await next.stop()).toBe(0);
    expect(next.logs()).not.toContain('revoking a caller session failed');
  }, 120_000);

  it('revokes every lease of a proxy killed with SIGKILL while it held 20 caller sessions', async () => {
    const doomed = await startProxy([]);
    const endpoint = `127.0.0.1:${String(doomed.ready.port)}`;
    const aclBefore = new Set(await redisAclUsers());
    const tokens = [];
    for (let i = 0; i < 20; i++) tokens.push(await loginAs(idp, 'alice@example.com'));
    await Promise.all(
      tokens.map(async (token, i) => {
        await callOnce(endpoint, token, 'cache', `kill-${i}`);
        await callOnce(endpoint, token, 'hot', `kill-${i}`);
      }),
    );
    const pgUsers = await pgConnectionUsers(ns);
    const redisUsers = (await redisAclUsers()).filter((u) => !aclBefore.has(u));
    expect(pgUsers).toHaveLength(20);
    expect(redisUsers).toHaveLength(20);
    expect((await sessionList(endpoint, tokens[0]!)).sessions).toHaveLength(20);

    await doomed.stop('SIGKILL');
    const killedAt = Date.now();
    // Nothing was revoked by the dead process.
    expect(await existingPgRoles(pgUsers)).toHaveLength(20);

    const successor = await startProxy([]);
    await waitFor(
      'the dead proxy’s leased users to be revoked',
      async () => {
        const pgLeft = await existingPgRoles(pgUsers);
        const acl = new Set(await redisAclUsers());
        const redisLeft = redisUsers.filter((u) => acl.has(u));
        // Vault revokes a token's leases in the background: the listing empties last.
        const leases = [
          ...(await vault.leases(`${role}-cache-store`)),
          ...(await vault.leases(`${role}-hot-store`)),
        ];
        return pgLeft.length === 0 && redisLeft.length === 0 && leases.length === 0 ? true : undefined;
      },
      20_000,
    );
    const took = Date.now() - killedAt;
    console.log(`[shared-sessions] 20 sessions of a SIGKILLed proxy revoked ${took} ms after the kill`);
    const listed = await sessionList(`127.0.0.1:${String(successor.ready.port)}`, tokens[0]!);
    expect(listed.sessions).toEqual([]);
    expect(successor.logs()).toContain('caller session of a departed owner revoked');
  }, 180_000);
});
