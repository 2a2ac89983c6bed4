import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { AwsAuthStandin } from '../support/aws-auth-standin.js';
import { ensureBuilt } from '../support/cli.js';
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
import { describeWithServices, redisUrl } from '../support/services.js';
import { StsStandin } from '../support/sts-standin.js';
import {
  bootstrapTestVault,
  startVaultProxyOn,
  vaultProxyNamespace,
  writeVaultProxyConfig,
  type TestVaultBootstrap,
  type VaultProxyOptions,
} from '../support/vault-proxy.js';

/**
 * A proxy whose only identity is AWS credentials in its environment: it logs in at auth/aws/login
 * with a signed GetCallerIdentity, and its keyvalue store connects as the PostgreSQL role Vault
 * leased with that login's token. Neither the secret key nor the signature reaches the log. The
 * proxy runs with --no-auth: with auth on, keyvalue would use each caller's own session
 * (caller-sessions.test.ts), and this test is about the process's service identity.
 *
 * Two stand-ins, and only these: AWS is not reachable, so STS is sts-standin.ts, which checks the
 * signature with the same secret key as STS would; and OpenBao 2.7.2 has no aws auth method (not
 * built in, its plugin served by no registry reachable here), so auth/aws/login is answered by
 * aws-auth-standin.ts in front of the real OpenBao: it checks the login and its signed server id as
 * the aws method does, forwards the request to STS, and gets the login a real OpenBao token. The
 * lease, the PostgreSQL role, renewals and revocations are the real OpenBao's, configured by the
 * product's bootstrap.
 */
const KEY_ID = 'AKIDPRISME2E';
const SECRET = 'e2e/aws+secret/key/0123456789abcdef';
const SESSION_TOKEN = 'e2e-session-token';
const SERVER_ID = 'vault.prism.test';
const ASSUMED = 'arn:aws:sts::123456789012:assumed-role/prism-proxy/e2e';
const VAULT_TOKEN = /\bs\.[A-Za-z0-9]{24}\b/;

await describeWithServices(
  ['vault', 'postgres', 'redis'],
  'a proxy logging in to Vault with AWS IAM credentials',
  () => {
    const idp = new DevIdp();
    const suffix = `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const namespace = `vaws-${suffix}`;
    const role = `prism-${suffix}`;
    const cacheRole = `${role}-cache-store`;
    let vault: RealVault;
    let boot: TestVaultBootstrap;
    let sandbox: PostgresSandbox;
    let sts: StsStandin;
    let aws: AwsAuthStandin;
    let proxy: RunningServer | undefined;
    let stopped = false;
    let username = '';

    /** Whether the real OpenBao still knows a token, by its accessor. */
    const tokenAlive = (accessor: string) =>
      vault.api('POST', 'auth/token/lookup-accessor', { accessor }).then(
        () => true,
        () => false,
      );

    beforeAll(async () => {
      await ensureBuilt();
      await idp.start();
      vault = await RealVault.create();
      sandbox = await postgresSandbox(vault.suffix);
      sts = new StsStandin({ [KEY_ID]: { secretAccessKey: SECRET, arn: ASSUMED } });
      aws = new AwsAuthStandin({
        vault: { address: vault.address, rootToken: vault.token },
        stsEndpoint: await sts.start(),
        serverId: SERVER_ID,
        // The aws login role gets the policy the bootstrap wrote for the namespace's login role.
        roles: { [role]: { boundArns: ['arn:aws:iam::123456789012:role/prism-proxy'], policies: [role] } },
      });
      await aws.start();
      const dir = mkdtempSync(join(tmpdir(), 'prism-vault-aws-e2e-'));
      const options: VaultProxyOptions = {
        dir,
        namespace,
        issuer: idp.issuer,
        vaultAddress: aws.address,
        vaultRole: role,
        args: ['--no-auth'],
        env: {
          AWS_ACCESS_KEY_ID: KEY_ID,
          AWS_SECRET_ACCESS_KEY: SECRET,
          AWS_SESSION_TOKEN: SESSION_TOKEN,
          AWS_REGION: '',
          PRISM_VAULT_AWS_IAM_SERVER_ID: SERVER_ID,
        },
      };
      const config = writeVaultProxyConfig(dir, { postgres: postgresEndpoint(), redis: redisUrl() }, [
        vaultProxyNamespace(options),
      ]);
      boot = await bootstrapTestVault(vault, { issuer: idp.issuer, namespaces: config.namespaces, sandbox });
      proxy = await startVaultProxyOn(config, options);
    }, 90_000);

    afterAll(async () => {
      if (proxy && !stopped) await proxy.stop();
      await aws?.close();
      await sts?.close();
      await vault?.close();
      await sandbox?.drop();
      await idp.stop();
    });

    it('serves keyvalue through a connection made as the role leased with the token of an aws login', async () => {
      expect(sts.calls).toEqual([{ host: 'sts.amazonaws.com', accessKeyId: KEY_ID, status: 200 }]);
      expect(aws.logins.map(({ role: r, arn }) => ({ role: r, arn }))).toEqual([{ role, arn: ASSUMED }]);
      expect(await tokenAlive(aws.logins[0]!.accessor)).toBe(true);

      const client = new DataClient(`127.0.0.1:${proxy!.ready.port as number}`, { namespace });
      try {
        await client.set('greeting', Buffer.from('hello'));
        expect(Buffer.from((await client.get('greeting')).value).toString()).toBe('hello');
      } finally {
        client.close();
      }
      expect(await vault.leases(cacheRole)).toHaveLength(1);
      const users = await keyValueConnectionUsers(namespace);
      expect(users).toHaveLength(1);
      username = users[0]!;
      expect(await loginAsLeasedRole(username, boot.password)).toBe(username);
    });

    it('logs the identity’s source but never the secret key, the session token, the signature or a token', () => {
      const logs = proxy!.logs();
      expect(logs).toContain('"identity":"AWS_ACCESS_KEY_ID"');
      expect(logs).not.toContain(SECRET);
      expect(logs).not.toContain(SESSION_TOKEN);
      expect(sts.signatures).toHaveLength(1);
      for (const signature of sts.signatures) expect(logs).not.toContain(signature);
      expect(logs).not.toContain(boot.password);
      expect(logs).not.toMatch(VAULT_TOKEN);
    });

    it('revokes the lease and the aws login’s token when the proxy stops: the role is gone and its password refused', async () => {
      expect(username).not.toBe('');
      stopped = true;
      expect(await proxy!.stop()).toBe(0);
      expect(await vault.leases(cacheRole)).toEqual([]);
      expect(await postgresRoleExists(username)).toBe(false);
      expect(await tokenAlive(aws.logins[0]!.accessor)).toBe(false);
      await expect(loginAsLeasedRole(username, boot.password)).rejects.toThrow(
        /password authentication failed|does not exist/,
      );
    });
  },
);
