import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clone } from '@bufbuild/protobuf';
import { decodeJwt } from 'jose';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DevIdp } from '../../../src/auth/dev-idp.js';
import { NamespaceRequestSchema } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { RequestSessions } from '../../../src/auth/request-sessions.js';
import { vaultCredentials } from '../../../src/auth/vault-credentials.js';
import { loadServedNamespaces, type ServedNamespace } from '../../../src/proxy/file-source.js';
import { inProcessRunners, NamespaceTable } from '../../../src/proxy/namespace-table.js';
import { createRunner } from '../../../src/runners/create-runner.js';
import type { KeyValueRunner } from '../../../src/runners/keyvalue/runner.js';
import {
  keyValueConnectionUsers,
  loginAsLeasedRole,
  postgresRoleExists,
  waitForRoleDropped,
} from '../../support/leased-postgres.js';
import { freePort } from '../../support/ports.js';
import { connectRedis, describeWithService, redisUrl, requireService } from '../../support/services.js';
import { writeVaultProxyConfig } from '../../support/vault-proxy.js';
import {
  VaultStandin,
  loginAlice,
  postgresEndpoint,
  postgresSandbox,
  redisRole,
  type PostgresSandbox,
} from '../../support/vault-standin.js';

/**
 * Per-request sessions against the Vault stand-in and real backends: each caller's token opens its
 * own Vault session, the keyvalue store connects as the PostgreSQL role or Redis ACL user leased
 * for that caller, and closing the session (idle, LRU, stop) drops the role or user.
 */
await describeWithService('postgres', 'per-request Vault sessions for keyvalue on real backends', () => {
  const idp = new DevIdp();
  const suffix = `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const pgNs = `rs-pg-${suffix}`;
  const redisNs = `rs-redis-${suffix}`;
  const logger = pino({ level: 'silent' });
  let sandbox: PostgresSandbox;
  let standin: VaultStandin;
  let served: Map<string, ServedNamespace>;
  let alice: string;
  let alice2: string;
  const cleanup: Array<() => Promise<unknown>> = [];

  const sessions = (options: { idleMs?: number; maxSessions?: number; address?: string } = {}) => {
    const s = new RequestSessions({
      defaults: options.address ? { address: options.address } : {},
      idleMs: options.idleMs ?? 60_000,
      maxSessions: options.maxSessions ?? 10,
      logger,
    });
    cleanup.push(() => s.close());
    return s;
  };

  const runnerFor = async (name: string): Promise<KeyValueRunner> => {
    const ns = served.get(name)!;
    const runner = createRunner(
      ns.namespace,
      'cache',
      ns.assignment.patterns.find((p) => p.name === 'cache')!,
      {
        callerSessions: true,
        credentials: vaultCredentials({}, { env: {} }).resolve,
      },
    ) as KeyValueRunner;
    await runner.start();
    cleanup.push(() => runner.stop());
    return runner;
  };

  const exp = (token: string) => decodeJwt(token).exp;

  beforeAll(async () => {
    alice = await loginAlice(idp);
    alice2 = await loginAlice(idp);
    sandbox = await postgresSandbox(suffix);
    standin = new VaultStandin({
      issuer: idp.issuer,
      roles: { [`${pgNs}-cache-store`]: sandbox.role, [`${redisNs}-cache-store`]: redisRole(redisNs) },
      leaseSeconds: 30,
      tokenSeconds: 60,
    });
    await standin.start();
    const dir = mkdtempSync(join(tmpdir(), 'prism-request-sessions-'));
    const config = writeVaultProxyConfig(
      dir,
      { postgres: postgresEndpoint(), memstore: 'memstore://', redis: redisUrl() },
      [
        { name: pgNs, issuer: idp.issuer, vaultAddress: standin.address, store: 'postgres' },
        { name: redisNs, issuer: idp.issuer, vaultAddress: standin.address, store: 'redis' },
      ],
    );
    const loaded = await loadServedNamespaces([config.namespaces], { backends: config.backends });
    served = new Map(loaded.map((s) => [s.namespace.namespace, s]));
  }, 60_000);

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    await standin?.close();
    await sandbox?.drop();
    await idp.stop();
  });

  it('connects nothing at start: the store waits for a caller’s own credentials', async () => {
    const before = standin.count('creds');
    const runner = await runnerFor(pgNs);
    expect(runner.needsCallerSession).toBe(true);
    expect(standin.count('creds')).toBe(before);
    await expect(runner.get('k')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });

  it('runs a caller’s calls as the PostgreSQL role leased for that caller, and drops it when the session closes', async () => {
    const runner = await runnerFor(pgNs);
    const s = sessions();
    const kv = await runner.forCaller(await s.open(alice, exp(alice), served.get(pgNs)!.namespace));
    await kv.set('greeting', Buffer.from('hello'));
    expect(Buffer.from((await kv.get('greeting'))!).toString()).toBe('hello');

    const issued = standin.calls.filter((c) => c.op === 'creds' && c.role === `prism-${pgNs}-cache-store`);
    expect(issued).toHaveLength(1);
    const username = issued[0]!.username!;
    expect(await keyValueConnectionUsers(pgNs)).toEqual([username]);
    expect(standin.calls.filter((c) => c.op === 'login').at(-1)!.role).toBe(`prism-${pgNs}`);

    await s.close();
    expect(runner.callerConnections).toBe(0);
    expect(await keyValueConnectionUsers(pgNs)).toEqual([]);
    expect(await postgresRoleExists(username)).toBe(false);
    const password = standin.issued.find((i) => i.username === username)!.password;
    await expect(loginAsLeasedRole(username, password)).rejects.toThrow(
      /password authentication failed|does not exist/,
    );
  });

  it('gives two tokens two sessions with two roles, and reuses a token’s session for its later calls', async () => {
    const runner = await runnerFor(pgNs);
    const s = sessions();
    const ns = served.get(pgNs)!.namespace;
    const before = standin.count('creds');
    const a = await runner.forCaller(await s.open(alice, exp(alice), ns));
    const b = await runner.forCaller(await s.open(alice2, exp(alice2), ns));
    await a.set('x', Buffer.from('1'));
    await b.get('x');
    await (await runner.forCaller(await s.open(alice, exp(alice), ns))).get('x');
    expect(standin.count('creds') - before).toBe(2);
    expect(s.size).toBe(2);
    expect(await keyValueConnectionUsers(pgNs)).toHaveLength(2);
    await s.close();
    expect(await keyValueConnectionUsers(pgNs)).toEqual([]);
  });

  it('closes a session that sat idle, revoking its role without any further call', async () => {
    const runner = await runnerFor(pgNs);
    const s = sessions({ idleMs: 300 });
    const kv = await runner.forCaller(await s.open(alice, exp(alice), served.get(pgNs)!.namespace));
    await kv.get('greeting');
    const username = standin.calls.filter((c) => c.op === 'creds').at(-1)!.username!;
    await waitForRoleDropped(username, 5000);
    expect(await postgresRoleExists(username)).toBe(false);
    expect(s.size).toBe(0);
    expect(runner.callerConnections).toBe(0);
  });

  it('closes the least recently used session when the limit is reached, revoking its role', async () => {
    const runner = await runnerFor(pgNs);
    const s = sessions({ maxSessions: 1 });
    const ns = served.get(pgNs)!.namespace;
    await (await runner.forCaller(await s.open(alice, exp(alice), ns))).get('k');
    const first = standin.calls.filter((c) => c.op === 'creds').at(-1)!.username!;
    await (await runner.forCaller(await s.open(alice2, exp(alice2), ns))).get('k');
    await waitForRoleDropped(first, 5000);
    expect(await postgresRoleExists(first)).toBe(false);
    expect(s.size).toBe(1);
  });

  it('revokes a caller’s lease when the runner stops, while the caller’s session lives on', async () => {
    const runner = await runnerFor(pgNs);
    const s = sessions();
    await (await runner.forCaller(await s.open(alice, exp(alice), served.get(pgNs)!.namespace))).get('k');
    const username = standin.calls.filter((c) => c.op === 'creds').at(-1)!.username!;
    await runner.stop();
    expect(standin.calls.some((c) => c.op === 'revoke' && c.username === username)).toBe(true);
    expect(await postgresRoleExists(username)).toBe(false);
    expect(s.size).toBe(1);
  });

  it('runs a caller’s calls as the Redis ACL user leased for that caller, and deletes it when the session closes', async (ctx) => {
    await requireService('redis', ctx);
    const runner = await runnerFor(redisNs);
    const s = sessions();
    const kv = await runner.forCaller(await s.open(alice, exp(alice), served.get(redisNs)!.namespace));
    await kv.set('greeting', Buffer.from('hello'));
    expect(Buffer.from((await kv.get('greeting'))!).toString()).toBe('hello');
    const username = standin.calls.filter((c) => c.op === 'creds').at(-1)!.username!;
    const admin = connectRedis();
    try {
      const clients = (await admin.call('CLIENT', 'LIST')) as string;
      expect(clients).toContain(`user=${username} `);
      await s.close();
      expect((await admin.call('CLIENT', 'LIST')) as string).not.toContain(`user=${username} `);
      expect((await admin.call('ACL', 'USERS')) as string[]).not.toContain(username);
      const password = standin.issued.find((i) => i.username === username)!.password;
      const probe = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 0 });
      try {
        await probe.connect();
        await expect(probe.call('AUTH', username, password)).rejects.toThrow(/WRONGPASS/);
      } finally {
        probe.disconnect();
      }
    } finally {
      admin.disconnect();
    }
  });

  it('answers E_UNAVAILABLE when Vault is down, with no fallback to static or service credentials', async () => {
    const runner = await runnerFor(pgNs);
    const down = `http://127.0.0.1:${await freePort()}`;
    const ns = clone(NamespaceRequestSchema, served.get(pgNs)!.namespace);
    ns.auth!.vault!.address = down;
    process.env.PRISM_TEST_STATIC_CREDS = 'prism:prism';
    const s = sessions();
    const before = standin.calls.length;
    const err = (await s.open(alice, exp(alice), ns).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('E_UNAVAILABLE');
    expect(err.message).toContain(`Vault at ${down} is unreachable`);
    expect(err.message).not.toContain('prism:prism');
    expect(standin.calls.length).toBe(before);
    expect(s.size).toBe(0);
    await expect(runner.get('k')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    delete process.env.PRISM_TEST_STATIC_CREDS;
  });
});

await describeWithService('postgres', 'service-identity leases follow their namespace', () => {
  const idp = new DevIdp();
  const suffix = `s${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const name = `svc-${suffix}`;
  let sandbox: PostgresSandbox;
  let standin: VaultStandin;

  beforeAll(async () => {
    const jwt = await loginAlice(idp);
    process.env.PRISM_TEST_SERVICE_JWT = jwt;
    sandbox = await postgresSandbox(suffix);
    standin = new VaultStandin({ issuer: idp.issuer, roles: { [`${name}-cache-store`]: sandbox.role } });
    await standin.start();
  }, 60_000);

  afterAll(async () => {
    delete process.env.PRISM_TEST_SERVICE_JWT;
    await standin?.close();
    await sandbox?.drop();
    await idp.stop();
  });

  it('revokes the leases of a namespace’s runners when the namespace stops being served, while the process runs on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-svc-leases-'));
    const config = writeVaultProxyConfig(dir, { postgres: postgresEndpoint(), memstore: 'memstore://' }, [
      { name, issuer: idp.issuer, vaultAddress: standin.address },
    ]);
    const desired = await loadServedNamespaces([config.namespaces], { backends: config.backends });
    const vault = vaultCredentials({}, { env: { PRISM_VAULT_JWT: process.env.PRISM_TEST_SERVICE_JWT! } });
    const table = new NamespaceTable(
      inProcessRunners({ credentials: vault.resolve }),
      pino({ level: 'silent' }),
    );
    try {
      await table.reconcile(desired);
      expect(table.has(name)).toBe(true);
      const lease = standin.calls.find((c) => c.op === 'creds')!;
      expect(lease.role).toBe(`prism-${name}-cache-store`);
      expect(standin.calls.find((c) => c.op === 'login')!.role).toBe(`prism-${name}`);
      expect(await postgresRoleExists(lease.username!)).toBe(true);

      await table.reconcile([]);
      expect(standin.calls.filter((c) => c.op === 'revoke').map((c) => c.username)).toEqual([lease.username]);
      expect(await postgresRoleExists(lease.username!)).toBe(false);
    } finally {
      await table.stop();
      await vault.close();
    }
  });
});
