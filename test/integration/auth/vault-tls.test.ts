import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  vaultCredentials,
  vaultSettingsFromFlags,
  type VaultCredentials,
} from '../../../src/auth/vault-credentials.js';
import type { SlotContext } from '../../../src/runners/slots.js';
import { loginAsLeasedRole } from '../../support/leased-postgres.js';
import { describeWithService } from '../../support/services.js';
import { makeTestCa, type TestCa } from '../../support/test-ca.js';
import { VaultStandin, postgresSandbox, type PostgresSandbox } from '../../support/vault-standin.js';

/**
 * Vault over https with a private CA: the stand-in serves a certificate signed by a CA made for
 * this test; the client trusts it with --vault-ca-file naming that CA, and refuses it without the
 * file or with another CA's file (no fallback, no credentials).
 */
const slot: SlotContext = { namespace: 'vtls', pattern: 'cache', slot: 'store', backend: 'postgres' };
const ref = 'vault://database/creds/prism-vtls-cache-pg';
const aws = { AWS_ACCESS_KEY_ID: 'AKIDTLSTEST', AWS_SECRET_ACCESS_KEY: 'tls-test-secret' };

await describeWithService('postgres', 'a Vault client talking https to a Vault with a private CA', () => {
  const suffix = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  let ca: TestCa;
  let otherCa: TestCa;
  let sandbox: PostgresSandbox;
  let standin: VaultStandin;
  const opened: VaultCredentials[] = [];

  const fromFlags = (caFile?: string) => {
    const settings = vaultSettingsFromFlags({
      'vault-address': standin.address,
      'vault-auth-mount': 'jwt',
      'vault-role': 'prism-vtls',
      ...(caFile !== undefined ? { 'vault-ca-file': caFile } : {}),
    })!;
    const vault = vaultCredentials(settings, { env: aws });
    opened.push(vault);
    return vault;
  };

  beforeAll(async () => {
    ca = makeTestCa();
    otherCa = makeTestCa('Another CA');
    sandbox = await postgresSandbox(suffix);
    standin = new VaultStandin({
      issuer: 'http://127.0.0.1:9/unused',
      aws: { keys: { [aws.AWS_ACCESS_KEY_ID]: aws.AWS_SECRET_ACCESS_KEY } },
      roles: { '-pg': sandbox.role },
      tls: { key: ca.key, cert: ca.cert },
    });
    await standin.start();
  });

  afterAll(async () => {
    for (const vault of opened) await vault.close().catch(() => undefined);
    await standin?.close();
    await sandbox?.drop();
  });

  it('trusts the Vault certificate with --vault-ca-file and leases working credentials', async () => {
    expect(standin.address).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const creds = (await fromFlags(ca.caFile).resolve(ref, slot))!;
    expect(await loginAsLeasedRole(creds.username, creds.password)).toBe(creds.username);
  });

  it('refuses the certificate without --vault-ca-file: UNAVAILABLE, and Vault never sees a login', async () => {
    const logins = standin.count('login');
    await expect(fromFlags().resolve(ref, slot)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringMatching(
        /^Vault at https:\/\/127\.0\.0\.1:\d+ is unreachable \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
      ),
    });
    expect(standin.count('login')).toBe(logins);
  });

  it('refuses the certificate with another CA in --vault-ca-file', async () => {
    await expect(fromFlags(otherCa.caFile).resolve(ref, slot)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringContaining('UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
    });
  });
});
