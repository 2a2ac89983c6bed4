import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEV_USERS, DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { loginAlice, loginAs } from '../support/dev-login.js';
import {
  keyValueConnectionUsers,
  loginAsLeasedRole,
  postgresEndpoint,
  postgresRoleExists,
  postgresSandbox,
  waitForRoleDropped,
  type PostgresSandbox,
} from '../support/leased-postgres.js';
import { freePort } from '../support/ports.js';
import { RealVault } from '../support/real-vault.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { describeWithServices } from '../support/services.js';
import {
  bootstrapTestVault,
  testVaultMount,
  writeVaultProxyConfig,
  type TestVaultBootstrap,
} from '../support/vault-proxy.js';

/**
 * Issue #7, done when: alice logs in with the device flow against the development provider (the
 * test plays the person), calls the proxy with her cached token through `prismctl kv`, gets data
 * only from the namespace her group is granted, her calls run on a PostgreSQL connection made as
 * the role Vault leased for her session alone, and when her session idles out the role is revoked
 * (dropped) and its credentials no longer log in. A namespace whose Vault is down answers
 * UNAVAILABLE and never falls back to static credentials. Issue #12: carol, admitted by a `user:`
 * grant with a token that carries no `groups` claim, is served too.
 *
 * Vault is the real one (OpenBao), configured by the product's own bootstrap (what `dev up`
 * writes); PostgreSQL is real behind its database engine. Every lease has the same password (a
 * fixed password policy), so the test can show that it logs in while the lease lives and not after.
 */
const CAROL = { email: 'carol@example.com', name: 'Carol' };
const VAULT_TOKEN = /\bs\.[A-Za-z0-9]{24}\b/;

await describeWithServices(
  ['vault', 'postgres'],
  'device login to a per-caller Vault session on PostgreSQL',
  () => {
    // Carol has no groups: her tokens carry no `groups` claim, like those of an IdP that sends none.
    const idp = new DevIdp({ users: [...DEV_USERS, CAROL] });
    const home = mkdtempSync(join(tmpdir(), 'prism-caller-home-'));
    const suffix = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const granted = `granted-${suffix}`;
    const denied = `denied-${suffix}`;
    const vaultDown = `down-${suffix}`;
    const carols = `carol-${suffix}`;
    let vault: RealVault;
    let boot: TestVaultBootstrap;
    let sandbox: PostgresSandbox;
    let proxy: RunningServer;
    let endpoint: string;
    let accessToken: string;
    let carolToken: string;
    let username = '';
    let stopped = false;

    /** The database role a namespace's `cache` store leases from, as the bootstrap derived it. */
    const cacheRole = (namespace: string) =>
      boot.namespaces
        .find((n) => n.namespace === namespace)!
        .databaseRoles.find((r) => r.name.endsWith('-cache-store'))!.name;
    const logins = async () => (await vault.tokens(boot.mount)).map((t) => t.meta?.role);

    beforeAll(async () => {
      await ensureBuilt();
      accessToken = await loginAlice(idp, home);
      carolToken = await loginAs(idp, CAROL.email);
      const issuer = idp.issuer;
      vault = await RealVault.create();
      sandbox = await postgresSandbox(vault.suffix);
      const authMount = testVaultMount(vault);
      const down = `http://127.0.0.1:${await freePort()}`;
      const dir = mkdtempSync(join(tmpdir(), 'prism-caller-e2e-'));
      const at = { issuer, vaultAddress: vault.address, authMount };
      const config = writeVaultProxyConfig(dir, { postgres: postgresEndpoint(), memstore: 'memory://' }, [
        { name: granted, team: 'commerce', ...at },
        { name: denied, team: 'analytics', ...at },
        { name: vaultDown, team: 'commerce', ...at, vaultAddress: down },
        {
          name: carols,
          team: 'analytics',
          ...at,
          consumers: [{ subject: `user:${CAROL.email}`, permissions: ['read', 'write'] }],
        },
      ]);
      boot = await bootstrapTestVault(vault, { issuer, namespaces: config.namespaces, sandbox });
      // No --vault-* flags: each namespace's own auth.vault names its Vault, mount and role.
      proxy = await startProxy(config, ['--log-level', 'debug', '--caller-session-idle', '5s'], {
        PRISM_VAULT_JWT: '',
        PRISM_TEST_STATIC: 'prism:prism',
      });
      endpoint = `127.0.0.1:${proxy.ready.port as number}`;
    }, 90_000);

    afterAll(async () => {
      if (proxy && !stopped) await proxy.stop();
      await vault?.close();
      await sandbox?.drop();
      await idp.stop();
    });

    const cli = (args: string[]) =>
      runCli([...args, '--proxy', endpoint], { env: { PRISM_HOME: home, PRISM_TOKEN: '' } });

    it('serves alice in the namespace her group owns, using her cached token, as the role Vault leased for her session', async () => {
      expect(cacheRole(granted)).toBe(`prism-${granted}-cache-store`);
      expect(await vault.leases(cacheRole(granted))).toEqual([]);
      expect((await cli(['kv', 'set', '-n', granted, 'greeting', 'hello'])).code).toBe(0);
      const got = await cli(['kv', 'get', '-n', granted, 'greeting']);
      expect(got.code).toBe(0);
      expect(got.stdout).toBe('hello');

      // One login with her own JWT at the namespace's role, one lease, one backend user.
      expect(await logins()).toEqual([`prism-${granted}`]);
      expect(await vault.leases(cacheRole(granted))).toHaveLength(1);
      const users = await keyValueConnectionUsers(granted);
      expect(users).toHaveLength(1);
      username = users[0]!;
      expect(username).toMatch(/^v-/);
      expect(await loginAsLeasedRole(username, boot.password)).toBe(username);
    });

    it('refuses her in a namespace she was not granted with PERMISSION_DENIED, before any Vault login', async () => {
      const res = await cli(['kv', 'get', '-n', denied, 'greeting']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('E_PERMISSION_DENIED');
      expect(await logins()).not.toContain(`prism-${denied}`);
      expect(await vault.leases(cacheRole(denied))).toEqual([]);
      expect(await keyValueConnectionUsers(denied)).toEqual([]);
    });

    it('answers UNAVAILABLE when the namespace’s Vault is down, with no connection made from static credentials', async () => {
      const client = new DataClient(endpoint, { namespace: vaultDown, token: accessToken });
      try {
        const err = (await client.get('greeting').catch((e: unknown) => e)) as Error & { code: string };
        expect(err.code).toBe('E_UNAVAILABLE');
        expect(err.message).toMatch(/Vault at http:\/\/127\.0\.0\.1:\d+ is unreachable/);
        expect(err.message).not.toContain('prism:prism');
      } finally {
        client.close();
      }
      const res = await cli(['kv', 'get', '-n', vaultDown, 'greeting']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('E_UNAVAILABLE');
      expect(await keyValueConnectionUsers(vaultDown)).toEqual([]);
    });

    it('revokes her role when her session idles out: the lease and Vault token end, and the credentials no longer log in', async () => {
      expect(username).not.toBe('');
      await waitForRoleDropped(username, 20_000);
      expect(await postgresRoleExists(username)).toBe(false);
      expect(await keyValueConnectionUsers(granted)).toEqual([]);
      expect(await vault.leases(cacheRole(granted))).toEqual([]);
      expect(await logins()).toEqual([]);
      await expect(loginAsLeasedRole(username, boot.password)).rejects.toThrow(
        /password authentication failed|does not exist/,
      );
    }, 30_000);

    it('opens a fresh session with a fresh role for her next call after the old one closed', async () => {
      const got = await cli(['kv', 'get', '-n', granted, 'greeting']);
      expect(got.stdout).toBe('hello');
      const users = await keyValueConnectionUsers(granted);
      expect(users).toHaveLength(1);
      expect(users[0]).not.toBe(username);
      expect(await vault.leases(cacheRole(granted))).toHaveLength(1);
    });

    it('serves carol, admitted by a user: grant, whose token carries no groups claim, as a role leased for her', async () => {
      const claims = JSON.parse(Buffer.from(carolToken.split('.')[1]!, 'base64url').toString()) as Record<
        string,
        unknown
      >;
      expect(claims.sub).toBe(CAROL.email);
      expect(claims).not.toHaveProperty('groups');

      const client = new DataClient(endpoint, { namespace: carols, token: carolToken });
      try {
        await client.set('note', Buffer.from('from carol'));
        expect(Buffer.from((await client.get('note')).value).toString()).toBe('from carol');
      } finally {
        client.close();
      }
      const users = await keyValueConnectionUsers(carols);
      expect(users).toHaveLength(1);
      expect(users[0]).not.toBe(username);
      expect(await vault.leases(cacheRole(carols))).toHaveLength(1);
      expect((await logins()).sort()).toEqual([`prism-${carols}`, `prism-${granted}`].sort());
    });

    it('never writes a caller’s token, a Vault token or a leased password to the proxy’s log', () => {
      const logs = proxy.logs();
      expect(logs).toContain('caller session opened');
      expect(logs).not.toContain(accessToken.split('.')[2]!);
      expect(logs).not.toContain(carolToken.split('.')[2]!);
      expect(logs).not.toContain(boot.password);
      expect(logs).not.toMatch(VAULT_TOKEN);
    });

    it('revokes every live session’s role, lease and Vault token when the proxy stops', async () => {
      const live = [...(await keyValueConnectionUsers(granted)), ...(await keyValueConnectionUsers(carols))];
      expect(live).toHaveLength(2);
      stopped = true;
      expect(await proxy.stop()).toBe(0);
      for (const user of live) expect(await postgresRoleExists(user)).toBe(false);
      expect(await vault.leases(cacheRole(granted))).toEqual([]);
      expect(await vault.leases(cacheRole(carols))).toEqual([]);
      expect(await logins()).toEqual([]);
      for (const user of live) {
        await expect(loginAsLeasedRole(user, boot.password)).rejects.toThrow(
          /password authentication failed|does not exist/,
        );
      }
    });
  },
);
