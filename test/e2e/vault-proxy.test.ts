import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt } from '../support/cli.js';
import { loginAlice, loginAs } from '../support/dev-login.js';
import {
  keyValueConnectionUsers,
  loginAsLeasedRole,
  postgresEndpoint,
  postgresRoleExists,
  postgresSandbox,
  type PostgresSandbox,
} from '../support/leased-postgres.js';
import { RealVault } from '../support/real-vault.js';
import type { RunningServer } from '../support/server-process.js';
import { connectRedis, describeWithServices, redisUrl } from '../support/services.js';
import {
  bootstrapTestVault,
  startVaultProxyOn,
  testVaultMount,
  vaultProxyNamespace,
  writeVaultProxyConfig,
  type TestVaultBootstrap,
  type VaultProxyOptions,
} from '../support/vault-proxy.js';

/**
 * Vault end to end: a proxy serves an auth-enabled, session-aware namespace with two keyvalue
 * stores, `cache` on PostgreSQL and `hot` on Redis. Their credentials come from alice's own Vault
 * session, opened on her first call against the real Vault (OpenBao, configured by the product's
 * bootstrap): Vault's database engine creates a PostgreSQL role and a Redis ACL user for her, the
 * proxy connects as them, and when the proxy stops it revokes the leases, so Vault drops both and
 * their password stops working. Neither the password nor a token reaches the log.
 */
const VAULT_TOKEN = /\bs\.[A-Za-z0-9]{24}\b/;

/** Redis ACL users Vault created for a database role (it names them V_<display>_<ROLE>_...). */
async function redisUsersOf(role: string): Promise<string[]> {
  const redis = connectRedis();
  try {
    const users = (await redis.call('ACL', 'USERS')) as string[];
    return users.filter((u) => u.startsWith('V_') && u.includes(`_${role.toUpperCase()}_`));
  } finally {
    redis.disconnect();
  }
}

/** The user of each client connection Redis has open. */
async function redisClientUsers(): Promise<string[]> {
  const redis = connectRedis();
  try {
    const list = (await redis.call('CLIENT', 'LIST')) as string;
    return list
      .split('\n')
      .map((line) => /(?:^| )user=(\S+)/.exec(line)?.[1])
      .filter((u): u is string => u !== undefined);
  } finally {
    redis.disconnect();
  }
}

/** Authenticates as a leased Redis user and answers PING; rejects as Redis does (WRONGPASS). */
async function pingAs(username: string, password: string): Promise<string> {
  const url = new URL(redisUrl());
  url.username = username;
  url.password = password;
  const redis = new Redis(url.toString(), {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // ioredis rejects connect() with a bare "Connection is closed."; the cause comes as an event.
  let cause: unknown;
  redis.on('error', (err: unknown) => {
    cause ??= err;
  });
  try {
    await redis.connect().catch((err: unknown) => {
      throw cause ?? err;
    });
    return await redis.ping();
  } finally {
    redis.disconnect();
  }
}

await describeWithServices(
  ['vault', 'postgres', 'redis'],
  'a proxy whose keyvalue stores connect with Vault credentials',
  () => {
    const idp = new DevIdp();
    const suffix = `e${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const namespace = `vault-${suffix}`;
    const role = `prism-${suffix}`;
    let vault: RealVault;
    let boot: TestVaultBootstrap;
    let sandbox: PostgresSandbox;
    let proxy: RunningServer | undefined;
    let token: string;
    let stopCode: number | null = null;
    let pgUser = '';
    let redisUser = '';

    beforeAll(async () => {
      await ensureBuilt();
      token = await loginAlice(idp);
      vault = await RealVault.create();
      sandbox = await postgresSandbox(vault.suffix);
      const dir = mkdtempSync(join(tmpdir(), 'prism-vault-e2e-'));
      // The process's own identity (for sessions whose owner is gone) logs in with the same role.
      writeFileSync(join(dir, 'jwt'), await loginAs(idp, 'dev@local.prism'));
      const options: VaultProxyOptions = {
        dir,
        namespace,
        issuer: idp.issuer,
        vaultAddress: vault.address,
        vaultRole: role,
        authMount: testVaultMount(vault),
        keyvalue: { hot: 'redis' },
        args: ['--vault-jwt-file', join(dir, 'jwt'), '--vault-auth-mount', testVaultMount(vault)],
      };
      const config = writeVaultProxyConfig(dir, { postgres: postgresEndpoint(), redis: redisUrl() }, [
        vaultProxyNamespace(options),
      ]);
      boot = await bootstrapTestVault(vault, { issuer: idp.issuer, namespaces: config.namespaces, sandbox });
      proxy = await startVaultProxyOn(config, options);
    }, 90_000);

    afterAll(async () => {
      if (proxy && stopCode === null) await proxy.stop();
      await vault?.close();
      await sandbox?.drop();
      await idp.stop();
    });

    it('serves alice as the PostgreSQL role and the Redis ACL user Vault leased for her session', async () => {
      const [cacheRole, hotRole] = [`${role}-cache-store`, `${role}-hot-store`];
      expect(boot.namespaces[0]!.databaseRoles.map((r) => r.name).sort()).toEqual([cacheRole, hotRole]);
      expect(await vault.leases(cacheRole)).toEqual([]);
      for (const pattern of ['cache', 'hot']) {
        const client = new DataClient(`127.0.0.1:${proxy!.ready.port as number}`, {
          namespace,
          pattern,
          token,
        });
        try {
          await client.set('greeting', Buffer.from(`hello from ${pattern}`));
          expect(Buffer.from((await client.get('greeting')).value).toString()).toBe(`hello from ${pattern}`);
        } finally {
          client.close();
        }
      }

      // Per-request session: alice's first calls leased one user per store, for her alone.
      expect(await vault.leases(cacheRole)).toHaveLength(1);
      expect(await vault.leases(hotRole)).toHaveLength(1);
      const pgUsers = await keyValueConnectionUsers(namespace);
      expect(pgUsers).toHaveLength(1);
      pgUser = pgUsers[0]!;
      expect(await loginAsLeasedRole(pgUser, boot.password)).toBe(pgUser);

      const redisUsers = await redisUsersOf(hotRole);
      expect(redisUsers).toHaveLength(1);
      redisUser = redisUsers[0]!;
      expect(await redisClientUsers()).toContain(redisUser);
      expect(await pingAs(redisUser, boot.password)).toBe('PONG');
    });

    it('revokes both leases when the proxy stops: Vault drops the role and the ACL user, and the password stops working', async () => {
      expect(pgUser).not.toBe('');
      stopCode = await proxy!.stop();
      expect(stopCode).toBe(0);
      expect(await vault.leases(`${role}-cache-store`)).toEqual([]);
      expect(await vault.leases(`${role}-hot-store`)).toEqual([]);
      expect(await postgresRoleExists(pgUser)).toBe(false);
      expect(await redisUsersOf(`${role}-hot-store`)).toEqual([]);
      await expect(loginAsLeasedRole(pgUser, boot.password)).rejects.toThrow(
        /password authentication failed|does not exist/,
      );
      await expect(pingAs(redisUser, boot.password)).rejects.toThrow(/WRONGPASS/);
    });

    it('never writes the leased password, a Vault token or the JWT to the proxy’s log', () => {
      const logs = proxy!.logs();
      expect(logs).toContain('caller session opened');
      expect(logs).not.toContain(boot.password);
      expect(logs).not.toMatch(VAULT_TOKEN);
      expect(logs).not.toContain(token.split('.')[2]!);
    });
  },
);
