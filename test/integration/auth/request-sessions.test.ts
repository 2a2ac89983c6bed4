import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clone } from '@bufbuild/protobuf';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { DEV_AUDIENCE, DevIdp } from '../../../src/auth/dev-idp.js';
import { NamespaceRequestSchema } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { RequestSessions } from '../../../src/auth/request-sessions.js';
import { vaultCredentials } from '../../../src/auth/vault-credentials.js';
import { loadServedNamespaces, type ServedNamespace } from '../../../src/proxy/file-source.js';
import { inProcessRunners, NamespaceTable } from '../../../src/proxy/namespace-table.js';
import { createRunner } from '../../../src/runners/create-runner.js';
import type { KeyValueRunner } from '../../../src/runners/keyvalue/runner.js';
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
import { RealVault } from '../../support/real-vault.js';
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
  const mount = await vault.jwtAuth({
    issuer,
    roles: Object.fromEntries(all.map((ns) => [`prism-${ns}`, { audiences: [DEV_AUDIENCE] }])),
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

  const sessions = (options: { idleMs?: number; maxSessions?: number } = {}) => {
    const s = new RequestSessions({
      defaults: {},
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
        { name: pgNs, issuer: idp.issuer, vaultAddress: vault.address, store: 'postgres' },
        { name: redisNs, issuer: idp.issuer, vaultAddress: vault.address, store: 'redis' },
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
    const s = sessions();
    const issued: Credentials[] = [];
    const session = recording(await s.open(alice, exp(alice), served.get(pgNs)!.namespace), issued);
    const kv = await runner.forCaller(session);
    await kv.set('greeting', Buffer.from('hello'));
    expect(Buffer.from((await kv.get('greeting'))!).toString()).toBe('hello');

    expect(await vault.leases(pgRole())).toHaveLength(1);
    expect(issued).toHaveLength(1);
    const { username, password } = issued[0]!;
    expect(await keyValueConnectionUsers(pgNs)).toEqual([username]);
    const tokens = await vault.tokens(mount);
    expect(tokens.map((t) => t.meta?.role)).toEqual([`prism-${pgNs}`]);

    await s.close();
    expect(runner.callerConnections).toBe(0);
    expect(await keyValueConnectionUsers(pgNs)).toEqual([]);
    expect(await vault.leases(pgRole())).toEqual([]);
    expect(await vault.tokens(mount)).toEqual([]);
    expect(await postgresRoleExists(username)).toBe(false);
    await expect(loginAsLeasedRole(username, password!)).rejects.toThrow(
      /password authentication failed|does not exist/,
    );
  });

  it('gives two tokens two sessions with two roles, and reuses a token’s session for its later calls', async () => {
    const runner = await runnerFor(pgNs);
    const s = sessions();
    const ns = served.get(pgNs)!.namespace;
    const a = await runner.forCaller(await s.open(alice, exp(alice), ns));
    const b = await runner.forCaller(await s.open(alice2, exp(alice2), ns));
    await a.set('x', Buffer.from('1'));
    await b.get('x');
    await (await runner.forCaller(await s.open(alice, exp(alice), ns))).get('x');
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

  it('closes a session that sat idle, revoking its role without any further call', async () => {
    const runner = await runnerFor(pgNs);
    const s = sessions({ idleMs: 300 });
    const kv = await runner.forCaller(await s.open(alice, exp(alice), served.get(pgNs)!.namespace));
    await kv.get('greeting');
    const [username] = await keyValueConnectionUsers(pgNs);
    expect(await postgresRoleExists(username!)).toBe(true);
    await waitForRoleDropped(username!, 5000);
    expect(await postgresRoleExists(username!)).toBe(false);
    expect(await vault.leases(pgRole())).toEqual([]);
    expect(s.size).toBe(0);
    expect(runner.callerConnections).toBe(0);
  });

  it('closes the least recently used session when the limit is reached, revoking its role', async () => {
    const runner = await runnerFor(pgNs);
    const s = sessions({ maxSessions: 1 });
    const ns = served.get(pgNs)!.namespace;
    await (await runner.forCaller(await s.open(alice, exp(alice), ns))).get('k');
    const [first] = await keyValueConnectionUsers(pgNs);
    await (await runner.forCaller(await s.open(alice2, exp(alice2), ns))).get('k');
    await waitForRoleDropped(first!, 5000);
    expect(await postgresRoleExists(first!)).toBe(false);
    expect(await vault.leases(pgRole())).toHaveLength(1);
    expect(s.size).toBe(1);
  });

  it('revokes a caller’s lease when the runner stops, while the caller’s session lives on', async () => {
    const runner = await runnerFor(pgNs);
    const s = sessions();
    await (await runner.forCaller(await s.open(alice, exp(alice), served.get(pgNs)!.namespace))).get('k');
    const [username] = await keyValueConnectionUsers(pgNs);
    expect(await vault.leases(pgRole())).toHaveLength(1);
    await runner.stop();
    expect(await vault.leases(pgRole())).toEqual([]);
    expect(await postgresRoleExists(username!)).toBe(false);
    expect(s.size).toBe(1);
    expect(await vault.tokens(mount)).toHaveLength(1);
  });

  it('runs a caller’s calls as the Redis ACL user leased for that caller, and deletes it when the session closes', async (ctx) => {
    await requireService('redis', ctx);
    const runner = await runnerFor(redisNs);
    const s = sessions();
    const issued: Credentials[] = [];
    const session = recording(await s.open(alice, exp(alice), served.get(redisNs)!.namespace), issued);
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
    const down = `http://127.0.0.1:${await freePort()}`;
    const ns = clone(NamespaceRequestSchema, served.get(pgNs)!.namespace);
    ns.auth!.vault!.address = down;
    process.env.PRISM_TEST_STATIC_CREDS = 'prism:prism';
    try {
      const s = sessions();
      const err = (await s.open(alice, exp(alice), ns).catch((e: unknown) => e)) as Error & { code: string };
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
