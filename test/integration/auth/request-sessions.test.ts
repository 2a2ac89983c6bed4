import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clone } from '@bufbuild/protobuf';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { DEV_AUDIENCE, DevIdp } from '../../../src/auth/dev-idp.js';
import { NamespaceRequestSchema } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { RequestSessions, type RequestSessionOptions } from '../../../src/auth/request-sessions.js';
import { VaultClient } from '../../../src/auth/vault-client.js';
import { vaultCredentials } from '../../../src/auth/vault-credentials.js';
import { VaultSession } from '../../../src/auth/vault-sessions.js';
import { loadServedNamespaces } from '../../../src/admin/local-namespaces.js';
import type { ServedNamespace } from '../../../src/proxy/served-namespace.js';
import { inProcessRunners, NamespaceTable } from '../../../src/proxy/namespace-table.js';
import { createRunner } from '../../../src/runners/create-runner.js';
import type { KeyValueRunner } from '../../../src/runners/keyvalue/runner.js';
import type { SessionManagerRunner } from '../../../src/runners/session-manager/runner.js';
import type { Credentials } from '../../../src/runners/slots.js';
import type { BackendSession } from '../../../src/runners/types.js';
import { loginAlice } from '../../support/dev-login.js';
import {
  keyValueConnectionUsers,
  loginAsLeasedRole,
  postgresEndpoint,
  postgresRoleExists,
  postgresSandbox,
  waitForRoleDropped,
  type PostgresSandbox,
} from '../../support/leased-postgres.js';
import { freePort } from '../../support/ports.js';
import { RealVault, SESSION_POLICY } from '../../support/real-vault.js';
import { connectRedis, describeWithService, redisUrl, requireService } from '../../support/services.js';
import { writeVaultProxyConfig } from '../../support/vault-proxy.js';

/** The caller session, recording the credentials its leases hand to the runner. */
function recording(session: BackendSession, issued: Credentials[]): BackendSession {
  return {
    id: session.id,
    credentials: async (ref, slot) => {
      const creds = await session.credentials(ref, slot);
      if (creds) issued.push(creds);
      return creds;
    },
    onClose: (hook) => session.onClose(hook),
  };
}

/**
 * Loads the namespaces and points their `auth.vault.auth_mount` at the test's jwt mount (the
 * shared Vault has one per test; vault-proxy.ts writes no auth_mount, and the canonical form
 * fills in `jwt`, which the process's --vault-auth-mount default then never overrides).
 */
async function loadWithMount(
  config: { namespaces: string; backends: string },
  mount: string,
): Promise<ServedNamespace[]> {
  const loaded = await loadServedNamespaces([config.namespaces], { backends: config.backends });
  for (const served of loaded) served.namespace.auth!.vault!.authMount = mount;
  return loaded;
}

/**
 * Sets up the real Vault for namespaces served with Vault: a jwt mount bound to the dev IdP with
 * a login role `prism-<ns>` per namespace, and the database roles their slots derive
 * (`prism-<ns>-cache-store`, src/admin/assign.ts) on a PostgreSQL or Redis connection that
 * allows exactly those roles.
 */
async function vaultFor(
  vault: RealVault,
  issuer: string,
  sandbox: PostgresSandbox,
  namespaces: { postgres: string[]; redis?: string[] },
): Promise<string> {
  const all = [...namespaces.postgres, ...(namespaces.redis ?? [])];
  // The login role serves callers and the proxy's own identity, which revokes the sessions of a
  // departed proxy by their token's accessor (request-sessions.ts).
  const policy = await vault.policy(
    vault.name('sessions'),
    `${SESSION_POLICY}path "auth/token/revoke-accessor" { capabilities = ["update"] }\n`,
  );
  const mount = await vault.jwtAuth({
    issuer,
    roles: Object.fromEntries(
      all.map((ns) => [`prism-${ns}`, { audiences: [DEV_AUDIENCE], policies: [policy] }]),
    ),
  });
  const pgRoles = namespaces.postgres.map((ns) => `prism-${ns}-cache-store`);
  await vault.postgresConnection(vault.name('pg'), { allowedRoles: pgRoles });
  for (const role of pgRoles) {
    await vault.postgresRole(role, {
      db: vault.name('pg'),
      creation: sandbox.creation,
      revocation: sandbox.revocation,
    });
  }
  if (namespaces.redis?.length) {
    const redisRoles = namespaces.redis.map((ns) => `prism-${ns}-cache-store`);
    await vault.redisConnection(vault.name('redis'), { allowedRoles: redisRoles });
    for (const ns of namespaces.redis) {
      await vault.redisRole(`prism-${ns}-cache-store`, { db: vault.name('redis'), keyPrefix: `${ns}:` });
    }
  }
  return mount;
}

/**
 * Per-request sessions against the real Vault (OpenBao) and real backends: each caller's token
 * logs in to Vault itself, the keyvalue store connects as the PostgreSQL role or Redis ACL user
 * Vault leased for that caller, and closing the session (idle, LRU, stop) revokes the lease, so
 * Vault drops the role or deletes the user.
 */
await describeWithService('vault', 'per-request Vault sessions for keyvalue on real backends', () => {
  const idp = new DevIdp();
  const logger = pino({ level: 'silent' });
  let vault: RealVault;
  let sandbox: PostgresSandbox;
  let mount: string;
  let pgNs: string;
  let redisNs: string;
  let served: Map<string, ServedNamespace>;
  let alice: string;
  let alice2: string;
  const cleanup: Array<() => Promise<unknown>> = [];

  const pgRole = () => `prism-${pgNs}-cache-store`;
  const redisRole = () => `prism-${redisNs}-cache-store`;
  const nsOf = (name: string) => served.get(name)!.namespace;
  const caller = (token: string) => ({ subject: decodeJwt(token).sub!, expiresAt: decodeJwt(token).exp });

  /** A process's caller sessions (one per proxy worker). */
  const sessions = (
    options: {
      idleMs?: number;
      maxSessions?: number;
      sweepMs?: number;
      service?: RequestSessionOptions['service'];
      stores?: RequestSessionOptions['stores'];
    } = {},
  ) => {
    const s = new RequestSessions({
      defaults: {},
      idleMs: options.idleMs ?? 60_000,
      maxSessions: options.maxSessions ?? 10,
      ...(options.sweepMs !== undefined ? { sweepMs: options.sweepMs } : {}),
      ...(options.service !== undefined ? { service: options.service } : {}),
      ...(options.stores !== undefined ? { stores: options.stores } : {}),
      logger,
    });
    cleanup.push(() => s.close());
    return s;
  };

  const start = async <R extends { start(): Promise<void>; stop(): Promise<void> }>(
    name: string,
    pattern: string,
  ): Promise<R> => {
    const ns = served.get(name)!;
    const runner = createRunner(
      ns.namespace,
      pattern,
      ns.assignment.patterns.find((p) => p.name === pattern)!,
      {
        callerSessions: true,
        credentials: vaultCredentials({}, { env: {} }).resolve,
      },
    ) as unknown as R;
    await runner.start();
    cleanup.push(() => runner.stop());
    return runner;
  };
  /** The namespace's keyvalue runner, as one proxy worker has it. */
  const runnerFor = (name: string) => start<KeyValueRunner>(name, 'cache');
  /** The namespace's session-manager runner (its store is Redis, shared by every worker). */
  const storeFor = (name: string) => start<SessionManagerRunner>(name, 'sessions');

  beforeAll(async () => {
    alice = await loginAlice(idp);
    alice2 = await loginAlice(idp);
    vault = await RealVault.create();
    pgNs = `rs-pg-${vault.suffix}`;
    redisNs = `rs-redis-${vault.suffix}`;
    sandbox = await postgresSandbox(vault.suffix);
    mount = await vaultFor(vault, idp.issuer, sandbox, { postgres: [pgNs], redis: [redisNs] });
    const dir = mkdtempSync(join(tmpdir(), 'prism-request-sessions-'));
    const config = writeVaultProxyConfig(
      dir,
      { postgres: postgresEndpoint(), memstore: 'memstore://', redis: redisUrl() },
      [
        {
          name: pgNs,
          issuer: idp.issuer,
          vaultAddress: vault.address,
          store: 'postgres',
          sessionStore: 'redis',
        },
        {
          name: redisNs,
          issuer: idp.issuer,
          vaultAddress: vault.address,
          store: 'redis',
          sessionStore: 'redis',
        },
      ],
    );
    const loaded = await loadWithMount(config, mount);
    served = new Map(loaded.map((s) => [s.namespace.namespace, s]));
  }, 60_000);

  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  afterAll(async () => {
    await vault?.close();
    await sandbox?.drop();
    await idp.stop();
  });

  it('connects nothing at start: the store waits for a caller’s own credentials', async () => {
    const runner = await runnerFor(pgNs);
    expect(runner.needsCallerSession).toBe(true);
    expect(await vault.leases(pgRole())).toEqual([]);
    expect(await vault.tokens(mount)).toEqual([]);
    await expect(runner.get('k')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });

  it('runs a caller’s calls as the PostgreSQL role leased for that caller, and drops it when the session closes', async () => {
    const runner = await runnerFor(pgNs);
    const store = await storeFor(pgNs);
    const s = sessions();
    const issued: Credentials[] = [];
    const session = recording(await s.open(alice, caller(alice), nsOf(pgNs), store), issued);
    const kv = await runner.forCaller(session);
    await kv.set('greeting', Buffer.from('hello'));
    expect(Buffer.from((await kv.get('greeting'))!).toString()).toBe('hello');

    expect(await vault.leases(pgRole())).toHaveLength(1);
    expect(issued).toHaveLength(1);
    const { username, password } = issued[0]!;
    expect(await keyValueConnectionUsers(pgNs)).toEqual([username]);
    const tokens = await vault.tokens(mount);
    expect(tokens.map((t) => t.meta?.role)).toEqual([`prism-${pgNs}`]);
    const [record] = await store.listCallers();
    expect(record).toMatchObject({ subject: caller(alice).subject, accessor: tokens[0]!.accessor });
    expect(record!.leases.map((l) => l.id)).toEqual(await vault.leaseIds(pgRole()));
    expect(JSON.stringify(record)).not.toContain(password!);

    await s.close();
    expect(runner.callerConnections).toBe(0);
    expect(await keyValueConnectionUsers(pgNs)).toEqual([]);
    expect(await vault.leases(pgRole())).toEqual([]);
    expect(await vault.tokens(mount)).toEqual([]);
    expect(await store.listCallers()).toEqual([]);
    expect(await postgresRoleExists(username)).toBe(false);
    await expect(loginAsLeasedRole(username, password!)).rejects.toThrow(
      /password authentication failed|does not exist/,
    );
  });

  it('gives two tokens two sessions with two roles, and reuses a token’s session for its later calls', async () => {
    const runner = await runnerFor(pgNs);
    const store = await storeFor(pgNs);
    const s = sessions();
    const ns = nsOf(pgNs);
    const a = await runner.forCaller(await s.open(alice, caller(alice), ns, store));
    const b = await runner.forCaller(await s.open(alice2, caller(alice2), ns, store));
    await a.set('x', Buffer.from('1'));
    await b.get('x');
    await (await runner.forCaller(await s.open(alice, caller(alice), ns, store))).get('x');
    expect(await vault.leases(pgRole())).toHaveLength(2);
    expect(await vault.tokens(mount)).toHaveLength(2);
    expect(s.size).toBe(2);
    const users = await keyValueConnectionUsers(pgNs);
    expect(users).toHaveLength(2);
    for (const user of users) expect(await postgresRoleExists(user)).toBe(true);
    await s.close();
    expect(await keyValueConnectionUsers(pgNs)).toEqual([]);
    expect(await vault.leases(pgRole())).toEqual([]);
    for (const user of users) expect(await postgresRoleExists(user)).toBe(false);
  });

  it('lets a second worker reuse the first worker’s session for the same token: one Vault token, one lease, one role', async () => {
    const [runner1, runner2] = [await runnerFor(pgNs), await runnerFor(pgNs)];
    const [store1, store2] = [await storeFor(pgNs), await storeFor(pgNs)];
    const [worker1, worker2] = [sessions(), sessions()];
    const ns = nsOf(pgNs);
    await (
      await runner1.forCaller(await worker1.open(alice, caller(alice), ns, store1))
    ).set('shared', Buffer.from('from worker 1'));
    const kv2 = await runner2.forCaller(await worker2.open(alice, caller(alice), ns, store2));
    expect(Buffer.from((await kv2.get('shared'))!).toString()).toBe('from worker 1');
    expect(await vault.tokens(mount)).toHaveLength(1);
    expect(await vault.leases(pgRole())).toHaveLength(1);
    const users = await keyValueConnectionUsers(pgNs);
    expect(users).toHaveLength(1);

    await worker2.close(); // a borrower: the session and its lease stay
    expect(await vault.leases(pgRole())).toHaveLength(1);
    await worker1.close(); // the owner revokes
    expect(await vault.leases(pgRole())).toEqual([]);
    expect(await vault.tokens(mount)).toEqual([]);
    expect(await postgresRoleExists(users[0]!)).toBe(false);
  });

  it('closes a session that sat idle at the next sweep, revoking its role without any further call', async () => {
    const runner = await runnerFor(pgNs);
    const store = await storeFor(pgNs);
    const s = sessions({ idleMs: 300, sweepMs: 100 });
    const kv = await runner.forCaller(await s.open(alice, caller(alice), nsOf(pgNs), store));
    await kv.get('greeting');
    s.start();
    const [username] = await keyValueConnectionUsers(pgNs);
    expect(await postgresRoleExists(username!)).toBe(true);
    await waitForRoleDropped(username!, 5000);
    expect(await postgresRoleExists(username!)).toBe(false);
    expect(await vault.leases(pgRole())).toEqual([]);
    expect(await vault.tokens(mount)).toEqual([]);
    expect(s.size).toBe(0);
    expect(runner.callerConnections).toBe(0);
  });

  it('closes the least recently used session when the limit is reached, revoking its role', async () => {
    const runner = await runnerFor(pgNs);
    const store = await storeFor(pgNs);
    const s = sessions({ maxSessions: 1 });
    const ns = nsOf(pgNs);
    await (await runner.forCaller(await s.open(alice, caller(alice), ns, store))).get('k');
    const [first] = await keyValueConnectionUsers(pgNs);
    await (await runner.forCaller(await s.open(alice2, caller(alice2), ns, store))).get('k');
    await waitForRoleDropped(first!, 5000);
    expect(await postgresRoleExists(first!)).toBe(false);
    expect(await vault.leases(pgRole())).toHaveLength(1);
    expect(await vault.tokens(mount)).toHaveLength(1);
    expect(s.size).toBe(1);
  });

  it('closes a caller’s connections when the runner stops; the lease ends with the session', async () => {
    const runner = await runnerFor(pgNs);
    const store = await storeFor(pgNs);
    const s = sessions();
    await (await runner.forCaller(await s.open(alice, caller(alice), nsOf(pgNs), store))).get('k');
    const [username] = await keyValueConnectionUsers(pgNs);
    await runner.stop();
    expect(await keyValueConnectionUsers(pgNs)).toEqual([]);
    expect(await vault.leases(pgRole())).toHaveLength(1);
    expect(await postgresRoleExists(username!)).toBe(true);
    expect(s.size).toBe(1);
    await s.close();
    expect(await vault.leases(pgRole())).toEqual([]);
    expect(await postgresRoleExists(username!)).toBe(false);
  });

  it('revokes, with its own service identity, the sessions of a proxy that is gone', async () => {
    const runner = await runnerFor(pgNs);
    const store = await storeFor(pgNs);
    const ns = nsOf(pgNs);
    // The first proxy opens a session (marking itself alive for two sweeps and a second) and
    // never marks itself alive again: it is gone once the mark lapses.
    const gone = sessions({ sweepMs: 100 });
    await (await runner.forCaller(await gone.open(alice, caller(alice), ns, store))).get('k');
    const [username] = await keyValueConnectionUsers(pgNs);
    const [record] = await store.listCallers();
    await runner.stop();
    expect(await store.ownerAlive(record!.owner)).toBe(true);
    await new Promise((r) => setTimeout(r, 1300));
    expect(await store.ownerAlive(record!.owner)).toBe(false);

    // The second proxy's own identity (here alice2's JWT at the same login role) revokes them.
    const client = new VaultClient({ address: vault.address });
    const identities: VaultSession[] = [];
    cleanup.push(async () => {
      for (const identity of identities) await identity.close();
    });
    const service = sessions({
      stores: () => [{ store, namespace: ns }],
      service: async (scope) => {
        const identity = await VaultSession.open({
          client,
          mount: scope.mount,
          role: scope.role,
          jwt: alice2,
        });
        identities.push(identity);
        return identity;
      },
    });
    await service.sweep();

    expect(await store.listCallers().then((r) => r.map((x) => x.id))).not.toContain(record!.id);
    expect(await vault.leaseIds(pgRole())).not.toContain(record!.leases[0]!.id);
    expect((await vault.tokens(mount)).map((t) => t.accessor)).not.toContain(record!.accessor);
    expect(await postgresRoleExists(username!)).toBe(false);
  });

  it('runs a caller’s calls as the Redis ACL user leased for that caller, and deletes it when the session closes', async (ctx) => {
    await requireService('redis', ctx);
    const runner = await runnerFor(redisNs);
    const store = await storeFor(redisNs);
    const s = sessions();
    const issued: Credentials[] = [];
    const session = recording(await s.open(alice, caller(alice), nsOf(redisNs), store), issued);
    const kv = await runner.forCaller(session);
    await kv.set('greeting', Buffer.from('hello'));
    expect(Buffer.from((await kv.get('greeting'))!).toString()).toBe('hello');
    expect(await vault.leases(redisRole())).toHaveLength(1);
    const { username, password } = issued[0]!;
    const admin = connectRedis();
    try {
      expect((await admin.call('ACL', 'USERS')) as string[]).toContain(username);
      expect((await admin.call('CLIENT', 'LIST')) as string).toContain(`user=${username} `);
      await s.close();
      expect(await vault.leases(redisRole())).toEqual([]);
      expect((await admin.call('CLIENT', 'LIST')) as string).not.toContain(`user=${username} `);
      expect((await admin.call('ACL', 'USERS')) as string[]).not.toContain(username);
      await expect(admin.call('AUTH', username, password!)).rejects.toThrow(/WRONGPASS/);
    } finally {
      admin.disconnect();
    }
  });

  it('answers E_UNAVAILABLE when Vault is down, with no fallback to static or service credentials', async () => {
    const runner = await runnerFor(pgNs);
    const store = await storeFor(pgNs);
    const down = `http://127.0.0.1:${await freePort()}`;
    const ns = clone(NamespaceRequestSchema, nsOf(pgNs));
    ns.auth!.vault!.address = down;
    process.env.PRISM_TEST_STATIC_CREDS = 'prism:prism';
    try {
      const s = sessions();
      const err = (await s.open(alice, caller(alice), ns, store).catch((e: unknown) => e)) as Error & {
        code: string;
      };
      expect(err.code).toBe('E_UNAVAILABLE');
      expect(err.message).toContain(`Vault at ${down} is unreachable`);
      expect(err.message).not.toContain('prism:prism');
      expect(err.message).not.toContain(alice);
      expect(s.size).toBe(0);
      expect(await vault.tokens(mount)).toEqual([]);
      expect(await vault.leases(pgRole())).toEqual([]);
      await expect(runner.get('k')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    } finally {
      delete process.env.PRISM_TEST_STATIC_CREDS;
    }
  });
});

await describeWithService('vault', 'service-identity leases follow their namespace', () => {
  const idp = new DevIdp();
  let vault: RealVault;
  let sandbox: PostgresSandbox;
  let mount: string;
  let name: string;
  let jwt: string;

  beforeAll(async () => {
    jwt = await loginAlice(idp);
    vault = await RealVault.create();
    name = `svc-${vault.suffix}`;
    sandbox = await postgresSandbox(vault.suffix);
    mount = await vaultFor(vault, idp.issuer, sandbox, { postgres: [name] });
  }, 60_000);

  afterAll(async () => {
    await vault?.close();
    await sandbox?.drop();
    await idp.stop();
  });

  it('revokes the leases of a namespace’s runners when the namespace stops being served, while the process runs on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-svc-leases-'));
    const config = writeVaultProxyConfig(dir, { postgres: postgresEndpoint(), memstore: 'memstore://' }, [
      { name, issuer: idp.issuer, vaultAddress: vault.address },
    ]);
    const desired = await loadWithMount(config, mount);
    const creds = vaultCredentials({ mount }, { env: { PRISM_VAULT_JWT: jwt } });
    const table = new NamespaceTable(
      inProcessRunners({ credentials: creds.resolve }),
      pino({ level: 'silent' }),
    );
    const role = `prism-${name}-cache-store`;
    try {
      await table.reconcile(desired);
      expect(table.has(name)).toBe(true);
      expect(await vault.leases(role)).toHaveLength(1);
      expect((await vault.tokens(mount)).map((t) => t.meta?.role)).toEqual([`prism-${name}`]);
      const [username] = await keyValueConnectionUsers(name);
      expect(await postgresRoleExists(username!)).toBe(true);

      await table.reconcile([]);
      expect(table.has(name)).toBe(false);
      expect(await vault.leases(role)).toEqual([]);
      expect(await postgresRoleExists(username!)).toBe(false);
      // The process's Vault session outlives the namespace: its token stays until close.
      expect(await vault.tokens(mount)).toHaveLength(1);
    } finally {
      await table.stop();
      await creds.close();
    }
    expect(await vault.tokens(mount)).toEqual([]);
  });
});
