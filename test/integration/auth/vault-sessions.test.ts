import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEV_AUDIENCE, DevIdp } from '../../../src/auth/dev-idp.js';
import { vaultCredentials, type VaultCredentials } from '../../../src/auth/vault-credentials.js';
import { serviceIdentity } from '../../../src/auth/vault-sessions.js';
import { createPostgresKeyValue } from '../../../src/drivers/postgres/keyvalue.js';
import type { SlotContext } from '../../../src/runners/slots.js';
import { loginAlice } from '../../support/dev-login.js';
import {
  loginAsLeasedRole,
  postgresEndpoint,
  postgresRoleExists,
  postgresRoleValidUntil,
  postgresSandbox,
  waitForRoleDropped,
  type PostgresSandbox,
} from '../../support/leased-postgres.js';
import { freePort } from '../../support/ports.js';
import { RealVault } from '../../support/real-vault.js';
import { connectRedis, describeWithService, redisUrl, requireService } from '../../support/services.js';

/**
 * Service-identity Vault sessions (vault-credentials.ts) against the real Vault (OpenBao) with
 * real PostgreSQL and Redis behind its database engine: a JWT from the dev IdP logs in at a jwt
 * mount bound to that IdP, and each `vault://database/creds/<role>` reference leases a
 * PostgreSQL role or a Redis ACL user that Vault creates and, on revocation, drops. Leases last
 * 2 s and the token 4 s, so renewals at half their duration happen within a test.
 */
const slot: SlotContext = { namespace: 'vt', pattern: 'cache', slot: 'store', backend: 'postgres' };
const redisSlot: SlotContext = { ...slot, backend: 'redis' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function redisAs(username: string, password: string): Redis {
  const url = new URL(redisUrl());
  url.username = username;
  url.password = password;
  return new Redis(url.toString(), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

await describeWithService('vault', 'Vault sessions against the real Vault and real backends', () => {
  const idp = new DevIdp();
  let vault: RealVault;
  let sandbox: PostgresSandbox;
  let mount: string;
  let pgRole: string;
  let redisRole: string;
  let jwt: string;
  let jwtFile: string;
  const opened: VaultCredentials[] = [];

  const pgRef = () => `vault://database/creds/${pgRole}`;
  const redisRef = () => `vault://database/creds/${redisRole}`;
  const credentials = (address = vault.address, file = jwtFile) => {
    const creds = vaultCredentials({ address, mount, role: 'prism-vt', jwtFile: file }, { env: {} });
    opened.push(creds);
    return creds;
  };
  /** The lease Vault holds for a username it issued under `role`. */
  const leaseOf = async (role: string): Promise<string[]> => vault.leaseIds(role);

  beforeAll(async () => {
    jwt = await loginAlice(idp);
    jwtFile = join(mkdtempSync(join(tmpdir(), 'prism-vault-jwt-')), 'jwt');
    writeFileSync(jwtFile, jwt);
    vault = await RealVault.create();
    sandbox = await postgresSandbox(vault.suffix);
    pgRole = vault.name('prism-vt-cache-pg');
    redisRole = vault.name('prism-vt-cache-redis');
    mount = await vault.jwtAuth({
      issuer: idp.issuer,
      roles: { 'prism-vt': { audiences: [DEV_AUDIENCE], ttl: '4s', maxTtl: '1h' } },
    });
    await vault.postgresConnection(vault.name('pg'), { allowedRoles: [pgRole] });
    await vault.postgresRole(pgRole, {
      db: vault.name('pg'),
      creation: sandbox.creation,
      revocation: sandbox.revocation,
      defaultTtl: '2s',
      maxTtl: '1h',
    });
    // A role of the PostgreSQL connection that the connection's allowed_roles leaves out.
    await vault.postgresRole(vault.name('not-allowed'), { db: vault.name('pg') });
    await vault.redisConnection(vault.name('redis'), { allowedRoles: [redisRole] });
    await vault.redisRole(redisRole, { db: vault.name('redis'), keyPrefix: 'vt:', defaultTtl: '2s' });
  }, 60_000);

  afterAll(async () => {
    for (const creds of opened) await creds.close().catch(() => undefined);
    await vault?.close();
    await sandbox?.drop();
    await idp.stop();
  });

  it('logs in with the JWT and leases a PostgreSQL role the driver connects as', async () => {
    const creds = credentials();
    const leased = (await creds.resolve(pgRef(), slot))!;
    expect(await vault.tokens(mount)).toHaveLength(1);
    expect(await leaseOf(pgRole)).toHaveLength(1);
    expect(await postgresRoleExists(leased.username)).toBe(true);
    expect(await loginAsLeasedRole(leased.username, leased.password)).toBe(leased.username);

    const driver = createPostgresKeyValue({
      endpoint: postgresEndpoint(),
      credentials: leased,
      namespace: 'vt',
    });
    await driver.connect();
    try {
      await driver.set('greeting', Buffer.from('hello'));
      expect((await driver.get('greeting'))?.toString()).toBe('hello');
    } finally {
      await driver.close();
    }
    await creds.close();
    expect(await leaseOf(pgRole)).toEqual([]);
  });

  it('leases a Redis ACL user limited to the namespace’s keys', async (ctx) => {
    await requireService('redis', ctx);
    const creds = credentials();
    const leased = (await creds.resolve(redisRef(), redisSlot))!;
    const admin = connectRedis();
    const client = redisAs(leased.username, leased.password);
    try {
      expect((await admin.call('ACL', 'USERS')) as string[]).toContain(leased.username);
      await client.connect();
      expect(await client.call('ACL', 'WHOAMI')).toBe(leased.username);
      expect(await client.set('vt:k', 'v')).toBe('OK');
      await expect(client.set('other:k', 'v')).rejects.toThrow(/NOPERM/);
    } finally {
      client.disconnect();
      admin.disconnect();
    }
    await creds.close();
  });

  it('renews leases and the token at half their duration, so credentials outlive their first lease', async () => {
    const creds = credentials();
    const leased = (await creds.resolve(pgRef(), slot))!;
    const [leaseId] = await leaseOf(pgRole);
    const first = (await vault.lease(leaseId!))!;
    const validUntil = (await postgresRoleValidUntil(leased.username))!;
    expect(first.expireTime.getTime() - first.issueTime.getTime()).toBeLessThanOrEqual(2_000);

    await sleep(5_000);
    // Past the first lease's 2 s and the token's 4 s: both were renewed, or Vault would have
    // revoked the lease (and dropped the role) when either ran out.
    const renewed = (await vault.lease(leaseId!))!;
    expect(renewed.lastRenewal).toBeDefined();
    expect(renewed.expireTime.getTime()).toBeGreaterThan(first.expireTime.getTime() + 2_000);
    expect((await postgresRoleValidUntil(leased.username))!.getTime()).toBeGreaterThan(validUntil.getTime());
    const [token] = await vault.tokens(mount);
    expect(token!.lastRenewal).toBeDefined();
    expect(token!.expireTime.getTime()).toBeGreaterThan(token!.issueTime.getTime() + 4_000);
    expect(await loginAsLeasedRole(leased.username, leased.password)).toBe(leased.username);
    await creds.close();
  }, 20_000);

  it('revokes every lease and the token on close, so the credentials no longer connect', async (ctx) => {
    await requireService('redis', ctx);
    const creds = credentials();
    const pgCreds = (await creds.resolve(pgRef(), slot))!;
    const redisCreds = (await creds.resolve(redisRef(), redisSlot))!;
    expect(await leaseOf(pgRole)).toHaveLength(1);
    expect(await leaseOf(redisRole)).toHaveLength(1);
    expect(await vault.tokens(mount)).toHaveLength(1);
    await creds.close();

    expect(await leaseOf(pgRole)).toEqual([]);
    expect(await leaseOf(redisRole)).toEqual([]);
    expect(await vault.tokens(mount)).toEqual([]);
    expect(await postgresRoleExists(pgCreds.username)).toBe(false);
    await expect(loginAsLeasedRole(pgCreds.username, pgCreds.password)).rejects.toThrow(
      /password authentication failed|does not exist/,
    );
    const admin = connectRedis();
    try {
      expect((await admin.call('ACL', 'USERS')) as string[]).not.toContain(redisCreds.username);
      await expect(admin.call('AUTH', redisCreds.username, redisCreds.password)).rejects.toThrow(/WRONGPASS/);
    } finally {
      admin.disconnect();
    }
    await expect(creds.resolve(pgRef(), slot)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });

  it('stops renewing a lease Vault no longer has (revoked elsewhere), warning once instead of every second', async () => {
    const lines: string[] = [];
    const logger = {
      info: () => undefined,
      warn: (obj: object, msg: string) => void lines.push(JSON.stringify({ ...obj, msg })),
    };
    const creds = vaultCredentials(
      { address: vault.address, mount, role: 'prism-vt', jwtFile },
      { env: {}, logger },
    );
    opened.push(creds);
    const leased = (await creds.resolve(pgRef(), slot))!;
    const [leaseId] = await leaseOf(pgRole);
    await vault.api('PUT', 'sys/leases/revoke', { lease_id: leaseId });
    expect(await postgresRoleExists(leased.username)).toBe(false);

    await sleep(3_500); // the 2 s lease was due for renewal at 1 s; retries would come every second
    const warnings = lines.filter((l) => l.includes('lease'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('lease not found');
    expect(lines.filter((l) => l.includes('token'))).toEqual([]);
    await creds.close();
  }, 20_000);

  it('logs in again when Vault revoked the session’s token, instead of failing every later lease', async () => {
    const creds = credentials();
    const first = (await creds.resolve(pgRef(), slot))!;
    const [token] = await vault.tokens(mount);
    await vault.api('POST', 'auth/token/revoke-accessor', { accessor: token!.accessor });
    // Revoking the token revokes its leases (Vault does it in the background): the role goes.
    await waitForRoleDropped(first.username, 5_000);
    expect(await postgresRoleExists(first.username)).toBe(false);

    const second = (await creds.resolve(pgRef(), slot))!;
    expect(second.username).not.toBe(first.username);
    expect(await loginAsLeasedRole(second.username, second.password)).toBe(second.username);
    const tokens = await vault.tokens(mount);
    expect(tokens.map((t) => t.accessor)).not.toContain(token!.accessor);
    expect(tokens).toHaveLength(1);
    await creds.close();
    expect(await vault.tokens(mount)).toEqual([]);
    expect(await leaseOf(pgRole)).toEqual([]);
  });

  it('fails with E_UNAVAILABLE when Vault is down and never falls back to static credentials', async () => {
    const port = await freePort();
    process.env.PRISM_TEST_VAULT_STATIC = 'prism:prism';
    try {
      const creds = credentials(`http://127.0.0.1:${port}`);
      const err = (await creds.resolve(pgRef(), slot).catch((e: unknown) => e)) as Error & { code: string };
      expect(err.code).toBe('E_UNAVAILABLE');
      expect(err.message).toContain(`Vault at http://127.0.0.1:${port} is unreachable`);
      expect(err.message).not.toContain('prism:prism');
    } finally {
      delete process.env.PRISM_TEST_VAULT_STATIC;
    }
  });

  it('refuses a JWT Vault does not accept with E_UNAUTHENTICATED, without echoing it', async () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'prism-vault-bad-')), 'jwt');
    writeFileSync(bad, 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln');
    const leasesBefore = await leaseOf(pgRole);
    const err = (await credentials(vault.address, bad)
      .resolve(pgRef(), slot)
      .catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('E_UNAUTHENTICATED');
    expect(err.message).toMatch(new RegExp(`^Vault at ${vault.address} answered 400 on auth/${mount}/login`));
    expect(err.message).not.toContain('c2ln');
    expect(err.message).not.toContain('eyJ');
    expect(await leaseOf(pgRole)).toEqual(leasesBefore);
  });

  it('never puts the token, the JWT or a leased password in an error or a log line', async () => {
    const lines: string[] = [];
    const logger = {
      info: (obj: object, msg: string) => void lines.push(JSON.stringify({ ...obj, msg })),
      warn: (obj: object, msg: string) => void lines.push(JSON.stringify({ ...obj, msg })),
    };
    const creds = vaultCredentials(
      { address: vault.address, mount, role: 'prism-vt', jwtFile },
      { env: {}, logger },
    );
    opened.push(creds);
    const leased = (await creds.resolve(pgRef(), slot))!;
    // A role its connection does not allow: Vault refuses it, and the error names no secret.
    const err = (await creds
      .resolve(`vault://database/creds/${vault.name('not-allowed')}`, slot)
      .catch((e: unknown) => e)) as Error;
    await creds.close();
    // OpenBao answers 500 with a multi-line error; the message keeps it on one line.
    expect(err.message).toMatch(
      /answered 500 on database\/creds\/.*: 1 error occurred: \* ".*" is not an allowed role$/,
    );
    expect(err.message).not.toContain('\n');
    const text = [...lines, err.message].join('\n');
    expect(text).toContain('vault session opened');
    expect(text).not.toContain(jwt);
    expect(text).not.toContain(leased.password);
    expect(text).not.toMatch(/s\.[A-Za-z0-9]{20,}/); // an OpenBao token
  });

  it('resolves ${ENV} references beside Vault references', async () => {
    const creds = credentials();
    process.env.PRISM_TEST_VAULT_ENV_CREDS = 'user:pw';
    try {
      expect(await creds.resolve('${PRISM_TEST_VAULT_ENV_CREDS}', slot)).toEqual({
        username: 'user',
        password: 'pw',
      });
    } finally {
      delete process.env.PRISM_TEST_VAULT_ENV_CREDS;
    }
  });

  it('chooses the service identity: JWT file, then PRISM_VAULT_JWT, then the Kubernetes token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-vault-id-'));
    writeFileSync(join(dir, 'k8s'), 'k8s-jwt\n');
    writeFileSync(join(dir, 'file'), 'file-jwt\n');
    const k8s = join(dir, 'k8s');
    expect(
      serviceIdentity({
        jwtFile: join(dir, 'file'),
        env: { PRISM_VAULT_JWT: 'env-jwt' },
        kubernetesTokenFile: k8s,
      }),
    ).toMatchObject({ jwt: 'file-jwt' });
    expect(serviceIdentity({ env: { PRISM_VAULT_JWT: 'env-jwt' }, kubernetesTokenFile: k8s })).toMatchObject({
      jwt: 'env-jwt',
    });
    expect(serviceIdentity({ env: {}, kubernetesTokenFile: k8s })).toEqual({ jwt: 'k8s-jwt', source: k8s });
    expect(() => serviceIdentity({ env: {}, kubernetesTokenFile: join(dir, 'none') })).toThrow(
      expect.objectContaining({ code: 'E_USAGE' }),
    );
  });
});
