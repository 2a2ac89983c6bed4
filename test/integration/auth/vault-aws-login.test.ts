import { afterAll, beforeAll, expect, it } from 'vitest';
import { vaultCredentials, type VaultCredentials } from '../../../src/auth/vault-credentials.js';
import type { SlotContext } from '../../../src/runners/slots.js';
import { loginAsLeasedRole } from '../../support/leased-postgres.js';
import { describeWithService } from '../../support/services.js';
import { VaultStandin, postgresSandbox, type PostgresSandbox } from '../../support/vault-standin.js';

/**
 * A service identity made of AWS credentials: the process signs GetCallerIdentity with SigV4 and
 * logs in at auth/aws/login; the stand-in checks the signature with the same secret (as STS
 * would) and the session leases a real PostgreSQL role, revoked on close.
 */
const slot: SlotContext = { namespace: 'va', pattern: 'events', slot: 'store', backend: 'postgres' };
const ref = 'vault://database/creds/prism-va-events-pg';
const keyId = 'AKIDPRISMTEST';
const secret = 'prism/test+secret/key/for/the/standin/0123';
const serverId = 'vault.prism.test';

await describeWithService('postgres', 'Vault sessions with an AWS IAM identity', () => {
  const suffix = `a${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  let sandbox: PostgresSandbox;
  let standin: VaultStandin;
  const logs: string[] = [];
  const logger = {
    info: (obj: object, msg: string) => void logs.push(JSON.stringify({ ...obj, msg })),
    warn: (obj: object, msg: string) => void logs.push(JSON.stringify({ ...obj, msg })),
  };
  const opened: VaultCredentials[] = [];
  const credentials = (env: NodeJS.ProcessEnv) => {
    const vault = vaultCredentials({ address: standin.address, role: 'prism-va' }, { env, logger });
    opened.push(vault);
    return vault;
  };
  const awsEnv = {
    AWS_ACCESS_KEY_ID: keyId,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_SESSION_TOKEN: 'session-token-from-sts',
    PRISM_VAULT_AWS_IAM_SERVER_ID: serverId,
  };

  beforeAll(async () => {
    sandbox = await postgresSandbox(suffix);
    standin = new VaultStandin({
      issuer: 'http://127.0.0.1:9/unused',
      aws: { keys: { [keyId]: secret }, serverId },
      roles: { '-pg': sandbox.role },
    });
    await standin.start();
  });

  afterAll(async () => {
    for (const vault of opened) await vault.close().catch(() => undefined);
    await standin?.close();
    await sandbox?.drop();
  });

  it('logs in at auth/aws/login with a signed GetCallerIdentity and leases a role the backend accepts', async () => {
    const vault = credentials(awsEnv);
    const creds = (await vault.resolve(ref, slot))!;
    expect(standin.calls.filter((c) => c.op === 'login')).toEqual([
      { op: 'login', role: 'prism-va', mount: 'aws', status: 200 },
    ]);
    expect(await loginAsLeasedRole(creds.username, creds.password)).toBe(creds.username);

    await vault.close();
    expect(standin.calls.filter((c) => c.op === 'revoke').map((c) => c.username)).toContain(creds.username);
    await expect(loginAsLeasedRole(creds.username, creds.password)).rejects.toThrow();
  });

  it('is refused when the signature was made with another secret key', async () => {
    const vault = credentials({ ...awsEnv, AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
    const issued = standin.issued.length;
    await expect(vault.resolve(ref, slot)).rejects.toMatchObject({
      code: 'E_UNAUTHENTICATED',
      message: expect.stringContaining('SignatureDoesNotMatch'),
    });
    expect(standin.issued).toHaveLength(issued);
  });

  it('is refused without the X-Vault-AWS-IAM-Server-ID this Vault requires', async () => {
    const vault = credentials({ ...awsEnv, PRISM_VAULT_AWS_IAM_SERVER_ID: '' });
    await expect(vault.resolve(ref, slot)).rejects.toMatchObject({
      code: 'E_UNAUTHENTICATED',
      message: expect.stringContaining('X-Vault-AWS-IAM-Server-ID'),
    });
  });

  it('never logs the secret key, the session token or the signature', () => {
    const text = logs.join('\n');
    expect(text).toContain('vault session opened');
    expect(text).toContain('AWS_ACCESS_KEY_ID');
    expect(text).not.toContain(secret);
    expect(text).not.toContain('session-token-from-sts');
    expect(standin.signatures.length).toBeGreaterThan(0);
    for (const signature of standin.signatures) expect(text).not.toContain(signature);
  });
});
