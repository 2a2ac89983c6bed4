import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt } from '../support/cli.js';
import { keyValueConnectionUsers } from '../support/leased-postgres.js';
import type { RunningServer } from '../support/server-process.js';
import { describeWithService, probeService } from '../support/services.js';
import { startVaultProxy } from '../support/vault-proxy.js';
import { VaultStandin, loginAlice, postgresSandbox, type PostgresSandbox } from '../support/vault-standin.js';

/**
 * A proxy whose only identity is AWS credentials in its environment: it logs in to Vault at
 * auth/aws/login with a signed GetCallerIdentity (the stand-in checks the signature with the same
 * secret), and its keyvalue store connects as the PostgreSQL role Vault leased. Neither the secret
 * key nor the signature reaches the log. The proxy runs with --no-auth: with auth on, keyvalue
 * would use each caller's own session (caller-sessions.test.ts), and this test is about the
 * process's service identity.
 */
const redisUp = (await probeService('redis')).ok;

await describeWithService('postgres', 'a proxy logging in to Vault with AWS IAM credentials', () => {
  const idp = new DevIdp();
  const suffix = `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const namespace = `vaws-${suffix}`;
  const secret = 'e2e/aws+secret/key/0123456789abcdef';
  let sandbox: PostgresSandbox;
  let standin: VaultStandin;
  let proxy: RunningServer | undefined;
  let token: string;

  beforeAll(async () => {
    await ensureBuilt();
    token = await loginAlice(idp);
    sandbox = await postgresSandbox(suffix);
    standin = new VaultStandin({
      issuer: idp.issuer,
      aws: { keys: { AKIDPRISME2E: secret }, serverId: 'vault.prism.test' },
      roles: { '-cache-store': sandbox.role },
    });
    await standin.start();
    if (!redisUp) return;
    proxy = await startVaultProxy({
      dir: mkdtempSync(join(tmpdir(), 'prism-vault-aws-e2e-')),
      namespace,
      issuer: idp.issuer,
      vaultAddress: standin.address,
      vaultRole: `prism-${suffix}`,
      args: ['--no-auth'],
      env: {
        AWS_ACCESS_KEY_ID: 'AKIDPRISME2E',
        AWS_SECRET_ACCESS_KEY: secret,
        AWS_SESSION_TOKEN: 'e2e-session-token',
        AWS_REGION: '',
        PRISM_VAULT_AWS_IAM_SERVER_ID: 'vault.prism.test',
      },
    });
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await standin?.close();
    await sandbox?.drop();
    await idp.stop();
  });

  it('serves alice through a connection made as the role leased after an aws login', async (ctx) => {
    if (!proxy) ctx.skip('redis is not reachable (the session-manager slot needs it)');
    expect(standin.calls.filter((c) => c.op === 'login')).toEqual([
      { op: 'login', role: `prism-${suffix}`, mount: 'aws', status: 200 },
    ]);
    const [username] = standin.issued.map((i) => i.username);
    const client = new DataClient(`127.0.0.1:${proxy!.ready.port as number}`, { namespace, token });
    try {
      await client.set('greeting', Buffer.from('hello'));
      expect(Buffer.from((await client.get('greeting')).value).toString()).toBe('hello');
    } finally {
      client.close();
    }
    expect(await keyValueConnectionUsers(namespace)).toEqual([username]);
  });

  it('logs the identity’s source but never the secret key, the session token or the signature', (ctx) => {
    if (!proxy) ctx.skip('redis is not reachable (the session-manager slot needs it)');
    const logs = proxy!.logs();
    expect(logs).toContain('"identity":"AWS_ACCESS_KEY_ID"');
    expect(logs).not.toContain(secret);
    expect(logs).not.toContain('e2e-session-token');
    for (const signature of standin.signatures) expect(logs).not.toContain(signature);
    for (const { password } of standin.issued) expect(logs).not.toContain(password);
  });
});
