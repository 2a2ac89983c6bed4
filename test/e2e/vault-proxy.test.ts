import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt } from '../support/cli.js';
import { keyValueConnectionUsers, postgresRoleExists } from '../support/leased-postgres.js';
import type { RunningServer } from '../support/server-process.js';
import { describeWithService, probeService } from '../support/services.js';
import { startVaultProxy } from '../support/vault-proxy.js';
import { VaultStandin, loginAlice, postgresSandbox, type PostgresSandbox } from '../support/vault-standin.js';

/**
 * Vault end to end: a proxy serves an auth-enabled, session-aware keyvalue namespace on
 * PostgreSQL; its slot's credentials come from alice's own Vault session (the stand-in), opened
 * on her first call, that leases a real PostgreSQL role. Alice's calls go through a connection
 * made as that role, and when the proxy stops the role is revoked (dropped). Neither the password
 * nor the Vault token reaches the log.
 */
const redisUp = (await probeService('redis')).ok;

await describeWithService('postgres', 'a proxy whose keyvalue store connects with Vault credentials', () => {
  const idp = new DevIdp();
  const suffix = `e${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const namespace = `vault-${suffix}`;
  let sandbox: PostgresSandbox;
  let standin: VaultStandin;
  let proxy: RunningServer | undefined;
  let token: string;
  let stopCode: number | null = null;

  beforeAll(async () => {
    await ensureBuilt();
    token = await loginAlice(idp);
    sandbox = await postgresSandbox(suffix);
    standin = new VaultStandin({
      issuer: idp.issuer,
      roles: { '-cache-store': sandbox.role },
      leaseSeconds: 30,
      tokenSeconds: 60,
    });
    await standin.start();
    const dir = mkdtempSync(join(tmpdir(), 'prism-vault-e2e-'));
    writeFileSync(join(dir, 'jwt'), token);
    if (!redisUp) return;
    proxy = await startVaultProxy({
      dir,
      namespace,
      issuer: idp.issuer,
      vaultAddress: standin.address,
      vaultRole: `prism-${suffix}`,
      args: ['--vault-jwt-file', join(dir, 'jwt')],
    });
  }, 60_000);

  afterAll(async () => {
    if (proxy && stopCode === null) await proxy.stop();
    await standin?.close();
    await sandbox?.drop();
    await idp.stop();
  });

  it('serves alice through a connection made as the role Vault leased for her session, and drops it when the proxy stops', async (ctx) => {
    if (!proxy) ctx.skip('redis is not reachable (the session-manager slot needs it)');
    expect(standin.issued).toEqual([]);
    const client = new DataClient(`127.0.0.1:${proxy!.ready.port as number}`, { namespace, token });
    try {
      await client.set('greeting', Buffer.from('hello'));
      expect(Buffer.from((await client.get('greeting')).value).toString()).toBe('hello');
    } finally {
      client.close();
    }

    // Per-request session: alice's first call leased a role for her alone.
    const issued = standin.issued.map((i) => i.username);
    expect(issued).toHaveLength(1);
    const username = issued[0]!;
    expect(await keyValueConnectionUsers(namespace)).toEqual([username]);

    stopCode = await proxy!.stop();
    expect(stopCode).toBe(0);
    expect(standin.calls.filter((c) => c.op === 'revoke').map((c) => c.username)).toEqual([username]);
    expect(standin.count('revoke-self')).toBe(1);
    expect(await postgresRoleExists(username)).toBe(false);
  });

  it('never writes the leased password, the Vault token or the JWT to the proxy’s log', (ctx) => {
    if (!proxy) ctx.skip('redis is not reachable (the session-manager slot needs it)');
    const logs = proxy!.logs();
    expect(logs).toContain('vault database credentials leased');
    for (const { password } of standin.issued) expect(logs).not.toContain(password);
    for (const vaultToken of standin.tokens) expect(logs).not.toContain(vaultToken);
    expect(logs).not.toContain(token.split('.')[2]!);
  });
});
