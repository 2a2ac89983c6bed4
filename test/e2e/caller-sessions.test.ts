import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { freePort } from '../support/ports.js';
import {
  keyValueConnectionUsers,
  loginAsLeasedRole,
  postgresRoleExists,
  waitForRoleDropped,
} from '../support/leased-postgres.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { describeWithService } from '../support/services.js';
import { writeVaultProxyConfig } from '../support/vault-proxy.js';
import {
  VaultStandin,
  loginAlice,
  postgresEndpoint,
  postgresSandbox,
  type PostgresSandbox,
} from '../support/vault-standin.js';

/**
 * Issue #7, done when: alice logs in with the device flow against the development provider (the
 * test plays the person), calls the proxy with her cached token through `prismctl kv`, gets data
 * only from the namespace her group is granted, her calls run on a PostgreSQL connection made as
 * the role Vault leased for her session alone, and when her session idles out the role is revoked
 * (dropped) and its credentials no longer log in. A namespace whose Vault is down answers
 * UNAVAILABLE and never falls back to static credentials.
 */
await describeWithService('postgres', 'device login to a per-caller Vault session on PostgreSQL', () => {
  const idp = new DevIdp();
  const home = mkdtempSync(join(tmpdir(), 'prism-caller-home-'));
  const suffix = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const granted = `granted-${suffix}`;
  const denied = `denied-${suffix}`;
  const vaultDown = `down-${suffix}`;
  let sandbox: PostgresSandbox;
  let standin: VaultStandin;
  let proxy: RunningServer;
  let endpoint: string;
  let accessToken: string;
  let username = '';

  beforeAll(async () => {
    await ensureBuilt();
    accessToken = await loginAlice(idp, home);
    const issuer = idp.issuer;
    sandbox = await postgresSandbox(suffix);
    standin = new VaultStandin({
      issuer,
      roles: { [`${granted}-cache-store`]: sandbox.role, [`${denied}-cache-store`]: sandbox.role },
      leaseSeconds: 30,
      tokenSeconds: 60,
    });
    await standin.start();
    const down = `http://127.0.0.1:${await freePort()}`;
    const dir = mkdtempSync(join(tmpdir(), 'prism-caller-e2e-'));
    const config = writeVaultProxyConfig(dir, { postgres: postgresEndpoint(), memstore: 'memory://' }, [
      { name: granted, team: 'commerce', issuer, vaultAddress: standin.address },
      { name: denied, team: 'analytics', issuer, vaultAddress: standin.address },
      { name: vaultDown, team: 'commerce', issuer, vaultAddress: down },
    ]);
    // No --vault-* flags: each namespace's own auth.vault names its Vault and role.
    proxy = await startProxy(config, ['--log-level', 'debug', '--caller-session-idle', '3s'], {
      PRISM_VAULT_JWT: '',
      PRISM_TEST_STATIC: 'prism:prism',
    });
    endpoint = `127.0.0.1:${proxy.ready.port as number}`;
  }, 60_000);

  let stopped = false;

  afterAll(async () => {
    if (proxy && !stopped) await proxy.stop();
    await standin?.close();
    await sandbox?.drop();
    await idp.stop();
  });

  const cli = (args: string[]) =>
    runCli([...args, '--proxy', endpoint], { env: { PRISM_HOME: home, PRISM_TOKEN: '' } });

  it('serves alice in the namespace her group owns, using her cached token, as the role Vault leased for her session', async () => {
    expect(standin.count('creds')).toBe(0);
    expect((await cli(['kv', 'set', '-n', granted, 'greeting', 'hello'])).code).toBe(0);
    const got = await cli(['kv', 'get', '-n', granted, 'greeting']);
    expect(got.code).toBe(0);
    expect(got.stdout).toBe('hello');

    const leased = standin.calls.filter((c) => c.op === 'creds');
    expect(leased.every((c) => c.role === `prism-${granted}-cache-store`)).toBe(true);
    username = leased.at(-1)!.username!;
    expect(await keyValueConnectionUsers(granted)).toEqual([username]);
    expect(standin.calls.filter((c) => c.op === 'login').every((c) => c.role === `prism-${granted}`)).toBe(
      true,
    );
  });

  it('refuses her in a namespace she was not granted with PERMISSION_DENIED, before any Vault login', async () => {
    const logins = standin.count('login');
    const res = await cli(['kv', 'get', '-n', denied, 'greeting']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('E_PERMISSION_DENIED');
    expect(standin.count('login')).toBe(logins);
    expect(standin.calls.some((c) => c.role === `prism-${denied}-cache-store`)).toBe(false);
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

  it('revokes her role when her session idles out: the connection closes and the credentials no longer log in', async () => {
    expect(username).not.toBe('');
    await waitForRoleDropped(username, 15_000);
    expect(await postgresRoleExists(username)).toBe(false);
    expect(await keyValueConnectionUsers(granted)).toEqual([]);
    expect(standin.calls.some((c) => c.op === 'revoke' && c.username === username)).toBe(true);
    expect(standin.count('revoke-self')).toBeGreaterThanOrEqual(1);

    const password = standin.issued.find((i) => i.username === username)!.password;
    await expect(loginAsLeasedRole(username, password)).rejects.toThrow(
      /password authentication failed|does not exist/,
    );
  }, 20_000);

  it('opens a fresh session with a fresh role for her next call after the old one closed', async () => {
    const got = await cli(['kv', 'get', '-n', granted, 'greeting']);
    expect(got.stdout).toBe('hello');
    const latest = standin.calls.filter((c) => c.op === 'creds').at(-1)!.username!;
    expect(latest).not.toBe(username);
    expect(await keyValueConnectionUsers(granted)).toEqual([latest]);
  });

  it('never writes her token, a Vault token or a leased password to the proxy’s log', () => {
    const logs = proxy.logs();
    expect(logs).toContain('caller session opened');
    expect(logs).not.toContain(accessToken.split('.')[2]!);
    for (const { password } of standin.issued) expect(logs).not.toContain(password);
    for (const token of standin.tokens) expect(logs).not.toContain(token);
  });

  it('revokes her live session’s role and Vault token when the proxy stops', async () => {
    const latest = standin.calls.filter((c) => c.op === 'creds').at(-1)!.username!;
    expect(await postgresRoleExists(latest)).toBe(true);
    const selfRevokes = standin.count('revoke-self');
    stopped = true;
    expect(await proxy.stop()).toBe(0);
    expect(await postgresRoleExists(latest)).toBe(false);
    expect(standin.count('revoke-self')).toBe(selfRevokes + 1);
  });
});
