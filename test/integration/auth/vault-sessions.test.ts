import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DevIdp } from '../../../src/auth/dev-idp.js';
import { vaultCredentials, type VaultCredentials } from '../../../src/auth/vault-credentials.js';
import { serviceIdentity } from '../../../src/auth/vault-sessions.js';
import { createPostgresKeyValue } from '../../../src/drivers/postgres/keyvalue.js';
import type { SlotContext } from '../../../src/runners/slots.js';
import { loginAsLeasedRole } from '../../support/leased-postgres.js';
import { freePort } from '../../support/ports.js';
import { describeWithService, redisUrl, requireService } from '../../support/services.js';
import {
  VaultStandin,
  loginAlice,
  postgresEndpoint,
  postgresSandbox,
  redisRole,
  type PostgresSandbox,
} from '../../support/vault-standin.js';

const slot: SlotContext = { namespace: 'vt', pattern: 'cache', slot: 'store', backend: 'postgres' };
const pgRef = 'vault://database/creds/prism-vt-cache-pg';
const redisRef = 'vault://database/creds/prism-vt-cache-redis';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function redisAs(username: string, password: string): Redis {
  const url = new URL(redisUrl());
  url.username = username;
  url.password = password;
  return new Redis(url.toString(), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

await describeWithService('postgres', 'Vault sessions against the stand-in and real backends', () => {
  const idp = new DevIdp();
  const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  let sandbox: PostgresSandbox;
  let standin: VaultStandin;
  let jwtFile: string;
  const opened: VaultCredentials[] = [];

  const credentials = (address = standin.address) => {
    const vault = vaultCredentials({ address, role: 'prism-vt', jwtFile }, { env: {} });
    opened.push(vault);
    return vault;
  };

  beforeAll(async () => {
    const jwt = await loginAlice(idp);
    jwtFile = join(mkdtempSync(join(tmpdir(), 'prism-vault-jwt-')), 'jwt');
    writeFileSync(jwtFile, jwt);
    sandbox = await postgresSandbox(suffix);
    standin = new VaultStandin({
      issuer: idp.issuer,
      roles: { '-pg': sandbox.role, '-redis': redisRole('vt') },
      leaseSeconds: 2,
      tokenSeconds: 4,
    });
    await standin.start();
  }, 60_000);

  afterAll(async () => {
    for (const vault of opened) await vault.close().catch(() => undefined);
    await standin?.close();
    await sandbox?.drop();
    await idp.stop();
  });

  it('logs in with the JWT and leases a PostgreSQL role the driver connects as', async () => {
    const vault = credentials();
    const creds = (await vault.resolve(pgRef, slot))!;
    expect(standin.calls.filter((c) => c.op === 'login')).toHaveLength(1);
    expect(await loginAsLeasedRole(creds.username, creds.password)).toBe(creds.username);

    const driver = createPostgresKeyValue({
      endpoint: postgresEndpoint(),
      credentials: creds,
      namespace: 'vt',
    });
    await driver.connect();
    try {
      await driver.set('greeting', Buffer.from('hello'));
      expect((await driver.get('greeting'))?.toString()).toBe('hello');
    } finally {
      await driver.close();
    }
    await vault.close();
  });

  it('leases a Redis ACL user limited to the namespace’s keys', async (ctx) => {
    await requireService('redis', ctx);
    const vault = credentials();
    const creds = (await vault.resolve(redisRef, { ...slot, backend: 'redis' }))!;
    const client = redisAs(creds.username, creds.password);
    try {
      await client.connect();
      expect(await client.call('ACL', 'WHOAMI')).toBe(creds.username);
      expect(await client.set('vt:k', 'v')).toBe('OK');
      await expect(client.set('other:k', 'v')).rejects.toThrow(/NOPERM/);
    } finally {
      client.disconnect();
    }
    await vault.close();
  });

  it('renews leases and the token at half their duration, so credentials outlive their first lease', async () => {
    const vault = credentials();
    const creds = (await vault.resolve(pgRef, slot))!;
    const lease = standin.calls.find((c) => c.op === 'creds' && c.username === creds.username)!.leaseId;
    await sleep(3500);
    const renewals = standin.calls.filter((c) => c.op === 'renew' && c.leaseId === lease);
    expect(renewals.length).toBeGreaterThanOrEqual(2);
    expect(standin.count('renew-self')).toBeGreaterThanOrEqual(1);
    expect(standin.calls.some((c) => c.op === 'expire' && c.leaseId === lease)).toBe(false);
    expect(await loginAsLeasedRole(creds.username, creds.password)).toBe(creds.username);
    await vault.close();
  }, 15_000);

  it('revokes every lease and the token on close, so the credentials no longer connect', async (ctx) => {
    await requireService('redis', ctx);
    const vault = credentials();
    const pgCreds = (await vault.resolve(pgRef, slot))!;
    const redisCreds = (await vault.resolve(redisRef, { ...slot, backend: 'redis' }))!;
    const revokesBefore = standin.count('revoke-self');
    await vault.close();

    expect(standin.calls.filter((c) => c.op === 'revoke').map((c) => c.username)).toEqual(
      expect.arrayContaining([pgCreds.username, redisCreds.username]),
    );
    expect(standin.count('revoke-self')).toBe(revokesBefore + 1);
    await expect(loginAsLeasedRole(pgCreds.username, pgCreds.password)).rejects.toThrow(
      /password authentication failed|does not exist/,
    );
    const client = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      await expect(client.call('AUTH', redisCreds.username, redisCreds.password)).rejects.toThrow(
        /WRONGPASS/,
      );
    } finally {
      client.disconnect();
    }
    await expect(vault.resolve(pgRef, slot)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });

  it('fails with E_UNAVAILABLE when Vault is down and never falls back to static credentials', async () => {
    const port = await freePort();
    process.env.PRISM_TEST_VAULT_STATIC = 'prism:prism';
    const vault = credentials(`http://127.0.0.1:${port}`);
    const err = (await vault.resolve(pgRef, slot).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('E_UNAVAILABLE');
    expect(err.message).toContain(`Vault at http://127.0.0.1:${port} is unreachable`);
    expect(err.message).not.toContain('prism:prism');
    delete process.env.PRISM_TEST_VAULT_STATIC;
  });

  it('refuses a JWT Vault does not accept with E_UNAUTHENTICATED, without echoing it', async () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'prism-vault-bad-')), 'jwt');
    writeFileSync(bad, 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln');
    const vault = vaultCredentials({ address: standin.address, role: 'prism-vt', jwtFile: bad }, { env: {} });
    const err = (await vault.resolve(pgRef, slot).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('E_UNAUTHENTICATED');
    expect(err.message).not.toContain('c2ln');
  });

  it('resolves ${ENV} references beside Vault references', async () => {
    const vault = credentials();
    process.env.PRISM_TEST_VAULT_ENV_CREDS = 'user:pw';
    expect(await vault.resolve('${PRISM_TEST_VAULT_ENV_CREDS}', slot)).toEqual({
      username: 'user',
      password: 'pw',
    });
    delete process.env.PRISM_TEST_VAULT_ENV_CREDS;
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
