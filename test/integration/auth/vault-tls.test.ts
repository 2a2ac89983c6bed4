import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEV_AUDIENCE } from '../../../src/auth/dev-idp.js';
import {
  vaultCredentials,
  vaultSettingsFromFlags,
  type VaultCredentials,
} from '../../../src/auth/vault-credentials.js';
import type { SlotContext } from '../../../src/runners/slots.js';
import { startBaoServer, type BaoServer } from '../../support/bao-server.js';
import {
  loginAsLeasedRole,
  postgresRoleExists,
  postgresSandbox,
  type PostgresSandbox,
} from '../../support/leased-postgres.js';
import { RealVault } from '../../support/real-vault.js';
import { describeWithService } from '../../support/services.js';
import { makeTestCa, type TestCa } from '../../support/test-ca.js';

/**
 * Vault over https with a private CA: an OpenBao server of the test's own whose TLS listener
 * (from its server config file) serves a certificate signed by a CA made for this test. The
 * client trusts it with --vault-ca-file naming that CA, and refuses it without the file or with
 * another CA's file (no fallback, no credentials). The service identity is a JWT signed with a key
 * the jwt mount is given (jwt_validation_pubkeys).
 */
const slot: SlotContext = { namespace: 'vtls', pattern: 'cache', slot: 'store', backend: 'postgres' };

await describeWithService('vault', 'a Vault client talking https to a Vault with a private CA', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let bao: BaoServer;
  let vault: RealVault;
  let sandbox: PostgresSandbox;
  let mount: string;
  let role: string;
  let jwtFile: string;
  const opened: VaultCredentials[] = [];
  const ref = () => `vault://database/creds/${role}`;

  const fromFlags = (caFile?: string) => {
    const settings = vaultSettingsFromFlags({
      'vault-address': bao.tlsAddress!,
      'vault-auth-mount': mount,
      'vault-role': 'prism-vtls',
      'vault-jwt-file': jwtFile,
      ...(caFile !== undefined ? { 'vault-ca-file': caFile } : {}),
    });
    const creds = vaultCredentials(settings, { env: {} });
    opened.push(creds);
    return creds;
  };

  beforeAll(async () => {
    ca = makeTestCa();
    otherCa = makeTestCa('Another CA');
    bao = await startBaoServer({ tls: { key: ca.key, cert: ca.cert } });
    // Configured over the dev listener with the root token; the client only ever sees https.
    vault = await RealVault.create({ address: bao.address, rootToken: bao.rootToken });
    sandbox = await postgresSandbox(vault.suffix);
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    mount = await vault.jwtAuth({
      publicKeys: [await exportSPKI(publicKey)],
      roles: { 'prism-vtls': { audiences: [DEV_AUDIENCE] } },
    });
    role = vault.name('prism-vtls-cache-pg');
    await vault.postgresConnection(vault.name('pg'), { allowedRoles: [role] });
    await vault.postgresRole(role, {
      db: vault.name('pg'),
      creation: sandbox.creation,
      revocation: sandbox.revocation,
    });
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject('prism-proxy-vtls')
      .setAudience(DEV_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(privateKey);
    jwtFile = join(mkdtempSync(join(tmpdir(), 'prism-vtls-jwt-')), 'jwt');
    writeFileSync(jwtFile, jwt);
  }, 60_000);

  afterAll(async () => {
    for (const creds of opened) await creds.close().catch(() => undefined);
    await vault?.close();
    await bao?.stop();
    await sandbox?.drop();
  });

  it('trusts the Vault certificate with --vault-ca-file and leases working credentials', async () => {
    expect(bao.tlsAddress).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const creds = fromFlags(ca.caFile);
    const leased = (await creds.resolve(ref(), slot))!;
    expect(await vault.leases(role)).toHaveLength(1);
    expect(await postgresRoleExists(leased.username)).toBe(true);
    expect(await loginAsLeasedRole(leased.username, leased.password)).toBe(leased.username);
    await creds.close();
    expect(await vault.leases(role)).toEqual([]);
    expect(await postgresRoleExists(leased.username)).toBe(false);
  });

  it('refuses the certificate without --vault-ca-file: UNAVAILABLE, and Vault never sees a login', async () => {
    const tokens = (await vault.tokens(mount)).length;
    await expect(fromFlags().resolve(ref(), slot)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringMatching(
        /^Vault at https:\/\/127\.0\.0\.1:\d+ is unreachable \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
      ),
    });
    expect(await vault.tokens(mount)).toHaveLength(tokens);
    expect(await vault.leases(role)).toEqual([]);
  });

  it('refuses the certificate with another CA in --vault-ca-file', async () => {
    const tokens = (await vault.tokens(mount)).length;
    await expect(fromFlags(otherCa.caFile).resolve(ref(), slot)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringContaining('UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
    });
    expect(await vault.tokens(mount)).toHaveLength(tokens);
    expect(await vault.leases(role)).toEqual([]);
  });
});
