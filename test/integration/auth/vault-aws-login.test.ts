import { afterAll, beforeAll, expect, it } from 'vitest';
import { vaultCredentials, type VaultCredentials } from '../../../src/auth/vault-credentials.js';
import type { SlotContext } from '../../../src/runners/slots.js';
import { AwsAuthStandin } from '../../support/aws-auth-standin.js';
import {
  loginAsLeasedRole,
  postgresRoleExists,
  postgresSandbox,
  type PostgresSandbox,
} from '../../support/leased-postgres.js';
import { RealVault, vaultApi } from '../../support/real-vault.js';
import { describeWithService } from '../../support/services.js';
import { StsStandin } from '../../support/sts-standin.js';

/**
 * A service identity made of AWS credentials: the process signs GetCallerIdentity with SigV4 and
 * logs in at auth/aws/login; the session leases a real PostgreSQL role from the real OpenBao,
 * revoked on close.
 *
 * Not everything here is real. AWS is not reachable, so STS is a stand-in (sts-standin.ts) that
 * checks the signature with the same secret key, as STS would. And OpenBao 2.7.2 has no aws auth
 * method to point at it (not built in; its external plugin is served by no registry reachable
 * here), so auth/aws/login is answered by a stand-in in front of the real OpenBao
 * (aws-auth-standin.ts): it checks the login body and the X-Vault-AWS-IAM-Server-ID as the aws
 * method does, forwards the signed request to STS, and gets the login a real OpenBao token. Every
 * other call, and every check below of leases and tokens, is the real OpenBao's.
 */
const slot: SlotContext = { namespace: 'va', pattern: 'events', slot: 'store', backend: 'postgres' };
const keyId = 'AKIDPRISMTEST';
const secret = 'prism/test+secret/key/for/the/standin/0123';
const serverId = 'vault.prism.test';
const account = '123456789012';

await describeWithService('vault', 'Vault sessions with an AWS IAM identity', () => {
  let vault: RealVault;
  let sandbox: PostgresSandbox;
  let sts: StsStandin;
  let aws: AwsAuthStandin;
  let role: string;
  const logs: string[] = [];
  const logger = {
    info: (obj: object, msg: string) => void logs.push(JSON.stringify({ ...obj, msg })),
    warn: (obj: object, msg: string) => void logs.push(JSON.stringify({ ...obj, msg })),
  };
  const opened: VaultCredentials[] = [];
  const credentials = (env: NodeJS.ProcessEnv) => {
    const creds = vaultCredentials({ address: aws.address, role: 'prism-va' }, { env, logger });
    opened.push(creds);
    return creds;
  };
  const ref = () => `vault://database/creds/${role}`;
  const awsEnv = {
    AWS_ACCESS_KEY_ID: keyId,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_SESSION_TOKEN: 'session-token-from-sts',
    PRISM_VAULT_AWS_IAM_SERVER_ID: serverId,
  };
  /** Whether the real OpenBao still knows a token, by its accessor. */
  const tokenAlive = (accessor: string) =>
    vaultApi('POST', 'auth/token/lookup-accessor', { accessor }).then(
      () => true,
      () => false,
    );

  beforeAll(async () => {
    vault = await RealVault.create();
    sandbox = await postgresSandbox(vault.suffix);
    role = vault.name('prism-va-events-pg');
    await vault.postgresConnection(vault.name('pg'), { allowedRoles: [role] });
    await vault.postgresRole(role, {
      db: vault.name('pg'),
      creation: sandbox.creation,
      revocation: sandbox.revocation,
    });
    const policy = await vault.policy(vault.name('aws-session'));
    sts = new StsStandin({
      [keyId]: { secretAccessKey: secret, arn: `arn:aws:sts::${account}:assumed-role/prism-proxy/i-0abc` },
    });
    aws = new AwsAuthStandin({
      vault: { address: vault.address, rootToken: process.env.PRISM_TEST_VAULT_TOKEN!.trim() },
      stsEndpoint: await sts.start(),
      serverId,
      roles: { 'prism-va': { boundArns: [`arn:aws:iam::${account}:role/prism-proxy`], policies: [policy] } },
    });
    await aws.start();
  }, 60_000);

  afterAll(async () => {
    for (const creds of opened) await creds.close().catch(() => undefined);
    await aws?.close();
    await sts?.close();
    await vault?.close();
    await sandbox?.drop();
  });

  it('logs in at auth/aws/login with a signed GetCallerIdentity and leases a role the backend accepts', async () => {
    const creds = credentials(awsEnv);
    const leased = (await creds.resolve(ref(), slot))!;
    expect(sts.calls).toEqual([{ host: 'sts.amazonaws.com', accessKeyId: keyId, status: 200 }]);
    expect(aws.logins).toEqual([
      {
        role: 'prism-va',
        arn: `arn:aws:sts::${account}:assumed-role/prism-proxy/i-0abc`,
        accessor: expect.any(String),
      },
    ]);
    const { accessor } = aws.logins[0]!;
    expect(await tokenAlive(accessor)).toBe(true);
    expect(await vault.leases(role)).toHaveLength(1);
    expect(await postgresRoleExists(leased.username)).toBe(true);
    expect(await loginAsLeasedRole(leased.username, leased.password)).toBe(leased.username);

    await creds.close();
    expect(await vault.leases(role)).toEqual([]);
    expect(await tokenAlive(accessor)).toBe(false);
    expect(await postgresRoleExists(leased.username)).toBe(false);
    await expect(loginAsLeasedRole(leased.username, leased.password)).rejects.toThrow();
  });

  it('is refused when the signature was made with another secret key', async () => {
    const creds = credentials({ ...awsEnv, AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
    const logins = aws.logins.length;
    await expect(creds.resolve(ref(), slot)).rejects.toMatchObject({
      code: 'E_UNAUTHENTICATED',
      message: expect.stringContaining('SignatureDoesNotMatch'),
    });
    expect(sts.calls.at(-1)).toMatchObject({
      accessKeyId: keyId,
      status: 403,
      error: 'SignatureDoesNotMatch',
    });
    expect(aws.logins).toHaveLength(logins);
    expect(await vault.leases(role)).toEqual([]);
  });

  it('is refused without the X-Vault-AWS-IAM-Server-ID this Vault requires, before STS is asked', async () => {
    const creds = credentials({ ...awsEnv, PRISM_VAULT_AWS_IAM_SERVER_ID: '' });
    const stsCalls = sts.calls.length;
    await expect(creds.resolve(ref(), slot)).rejects.toMatchObject({
      code: 'E_UNAUTHENTICATED',
      message: expect.stringContaining('X-Vault-AWS-IAM-Server-ID'),
    });
    expect(sts.calls).toHaveLength(stsCalls);
    expect(await vault.leases(role)).toEqual([]);
  });

  it('never logs the secret key, the session token or the signature', () => {
    const text = logs.join('\n');
    expect(text).toContain('vault session opened');
    expect(text).toContain('AWS_ACCESS_KEY_ID');
    expect(text).not.toContain(secret);
    expect(text).not.toContain('session-token-from-sts');
    expect(sts.signatures.length).toBeGreaterThan(0);
    for (const signature of sts.signatures) expect(text).not.toContain(signature);
  });
});
