import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { vaultCredentials } from '../../../src/auth/vault-credentials.js';
import { vaultClients } from '../../../src/auth/vault-client.js';
import { VaultSession, serviceIdentity } from '../../../src/auth/vault-sessions.js';
import type { SlotContext } from '../../../src/runners/slots.js';
import { KubeApiStandin, type ServiceAccount } from '../../support/kube-api-standin.js';
import {
  loginAsLeasedRole,
  postgresRoleExists,
  postgresSandbox,
  type PostgresSandbox,
} from '../../support/leased-postgres.js';
import { RealVault } from '../../support/real-vault.js';
import { describeWithService } from '../../support/services.js';
import { makeTestCa } from '../../support/test-ca.js';

/**
 * A Kubernetes service identity logging in through the real Vault's (OpenBao's) built-in
 * `kubernetes` auth method, as a runner in a pod does: Prism reads the service-account token
 * file, logs in at the kubernetes mount, and leases a PostgreSQL role from the database engine.
 * Only the Kubernetes side is a stand-in (kube-api-standin.ts, the TokenReview API over https on
 * 127.0.0.1, since no cluster runs here); Vault calls it exactly as it calls a real API server,
 * through the mount's `kubernetes_host`, `kubernetes_ca_cert` and `token_reviewer_jwt`.
 */
const slot: SlotContext = { namespace: 'k8s', pattern: 'cache', slot: 'store', backend: 'postgres' };
const AUDIENCE = 'vault';
const ROLE = 'prism-runner';
const runner: ServiceAccount = { namespace: 'prism', name: 'prism-runner' };
const vaultSa: ServiceAccount = { namespace: 'openbao', name: 'openbao-token-reviewer' };

function tokenFile(jwt: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'prism-k8s-sa-')), 'token');
  writeFileSync(file, `${jwt}\n`, { mode: 0o600 });
  return file;
}

await describeWithService(
  'vault',
  'Kubernetes service-account login through the real Vault kubernetes auth method',
  () => {
    let kube: KubeApiStandin;
    let vault: RealVault;
    let sandbox: PostgresSandbox;
    let mount: string;
    let pgRole: string;
    const clientFor = vaultClients(undefined);

    const open = (file: string) =>
      VaultSession.open({
        client: clientFor(vault.address),
        mount,
        role: ROLE,
        identity: serviceIdentity({ env: {}, kubernetesTokenFile: file }),
      });

    beforeAll(async () => {
      kube = new KubeApiStandin({ tls: makeTestCa('Kubernetes Stand-in CA'), reviewers: [vaultSa] });
      await kube.start();
      vault = await RealVault.create();
      sandbox = await postgresSandbox(vault.suffix);
      pgRole = vault.name('prism-k8s-cache-pg');
      mount = await vault.kubernetesAuth({
        host: kube.host,
        caPem: kube.caPem,
        reviewerJwt: await kube.serviceAccountToken(vaultSa),
        issuer: kube.issuer,
        roles: {
          [ROLE]: {
            serviceAccounts: [runner.name],
            namespaces: [runner.namespace],
            audience: AUDIENCE,
            ttl: '1h',
          },
        },
      });
      await vault.postgresConnection(vault.name('pg'), { allowedRoles: [pgRole] });
      await vault.postgresRole(pgRole, {
        db: vault.name('pg'),
        creation: sandbox.creation,
        revocation: sandbox.revocation,
      });
    }, 60_000);

    afterAll(async () => {
      await vault?.close();
      await sandbox?.drop();
      await kube?.stop();
    });

    /** What the stand-in records for one TokenReview Vault made with its reviewer token. */
    const review = (subject: string, authenticated: boolean) => ({
      status: 201,
      caller: `system:serviceaccount:${vaultSa.namespace}:${vaultSa.name}`,
      typed: false,
      audiences: [AUDIENCE],
      authenticated,
      subject,
      ...(authenticated ? {} : { error: expect.stringMatching(/^\[invalid bearer token, /) as unknown }),
    });
    const runnerSubject = `system:serviceaccount:${runner.namespace}:${runner.name}`;

    /** Logs in with a token file that Vault must refuse: E_UNAUTHENTICATED, naming no token. */
    const refused = async (jwt: string): Promise<Error & { code: string }> => {
      const err = (await open(tokenFile(jwt)).catch((e: unknown) => e)) as Error & { code: string };
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe('E_UNAUTHENTICATED');
      expect(err.message).toMatch(
        new RegExp(`^Vault at ${vault.address} answered 403 on auth/${mount}/login: `),
      );
      expect(err.message).not.toContain(jwt);
      expect(err.message).not.toContain(jwt.split('.')[2]!);
      expect(err.message).not.toContain('eyJ');
      return err;
    };

    it('logs in with the service-account token file, leases a PostgreSQL role, and revokes it on close', async () => {
      const jwt = await kube.serviceAccountToken(runner, { audiences: [AUDIENCE] });
      kube.calls.length = 0;
      const session = await open(tokenFile(jwt));
      // One TokenReview, with Vault's reviewer token, for the runner's token and the role's audience.
      expect(kube.calls).toEqual([review(runnerSubject, true)]);

      const [token, ...others] = await vault.tokens(mount);
      expect(others).toEqual([]);
      expect(token!.path).toBe(`auth/${mount}/login`);
      expect(token!.meta).toMatchObject({
        role: ROLE,
        service_account_name: runner.name,
        service_account_namespace: runner.namespace,
      });
      expect(token!.policies).toContain(vault.name('k8s-session'));

      const leased = await session.databaseCredentials(pgRole);
      expect(await vault.leases(pgRole)).toHaveLength(1);
      expect(await postgresRoleExists(leased.username)).toBe(true);
      expect(await loginAsLeasedRole(leased.username, leased.password)).toBe(leased.username);

      await session.close();
      expect(await vault.leases(pgRole)).toEqual([]);
      expect(await postgresRoleExists(leased.username)).toBe(false);
      await expect(loginAsLeasedRole(leased.username, leased.password)).rejects.toThrow(
        /password authentication failed|does not exist/,
      );
      expect(await vault.tokens(mount)).toEqual([]);
      // Leasing and revoking are Vault's business: the API server saw nothing more.
      expect(kube.calls).toHaveLength(1);
    });

    it('resolves a vault:// reference through vaultCredentials logged in at the kubernetes mount', async () => {
      const file = tokenFile(await kube.serviceAccountToken(runner, { audiences: [AUDIENCE] }));
      kube.calls.length = 0;
      const creds = vaultCredentials(
        { address: vault.address, mount, role: ROLE, jwtFile: file },
        { env: {} },
      );
      try {
        const leased = (await creds.resolve(`vault://database/creds/${pgRole}`, slot))!;
        expect(await loginAsLeasedRole(leased.username, leased.password)).toBe(leased.username);
        // A second reference of the same scope reuses the session: no second login.
        const again = (await creds.resolve(`vault://database/creds/${pgRole}`, slot))!;
        expect(again.username).not.toBe(leased.username);
        expect(await vault.leases(pgRole)).toHaveLength(2);
        expect(await vault.tokens(mount)).toHaveLength(1);
        expect(kube.calls).toEqual([review(runnerSubject, true)]);
        await creds.close();
        expect(await vault.leases(pgRole)).toEqual([]);
        expect(await postgresRoleExists(leased.username)).toBe(false);
        expect(await vault.tokens(mount)).toEqual([]);
      } finally {
        await creds.close();
      }
    });

    it('refuses another service account, namespace or audience before asking the API server', async () => {
      kube.calls.length = 0;
      const otherName = await kube.serviceAccountToken(
        { namespace: runner.namespace, name: 'intruder' },
        {
          audiences: [AUDIENCE],
        },
      );
      expect((await refused(otherName)).message).toMatch(/service account name not authorized$/);
      const otherNamespace = await kube.serviceAccountToken(
        { namespace: 'default', name: runner.name },
        {
          audiences: [AUDIENCE],
        },
      );
      expect((await refused(otherNamespace)).message).toMatch(/namespace not authorized$/);
      const otherAudience = await kube.serviceAccountToken(runner, { audiences: [kube.issuer] });
      expect((await refused(otherAudience)).message).toMatch(/invalid audience \(aud\) claim/);
      // Vault reads the bound names and the audience from the token's claims and refuses without
      // a TokenReview.
      expect(kube.calls).toEqual([]);
      expect(await vault.tokens(mount)).toEqual([]);
      expect(await vault.leases(pgRole)).toEqual([]);
    });

    it('refuses a token the API server does not authenticate, as the TokenReview answers', async () => {
      // The runner's claims, signed by another cluster's key: Vault (no pem_keys) cannot tell, the
      // API server can.
      const otherCluster = new KubeApiStandin({ tls: makeTestCa('Other Cluster CA'), reviewers: [] });
      const forged = await otherCluster.serviceAccountToken(runner, { audiences: [AUDIENCE] });
      // A token of the runner's account before it was deleted and made again (a new uid).
      const stale = await kube.serviceAccountToken(runner, { audiences: [AUDIENCE] });
      kube.calls.length = 0;
      await refused(forged);
      kube.deleteServiceAccount(runner);
      try {
        await refused(stale);
      } finally {
        kube.createServiceAccount(runner);
      }
      expect(kube.calls).toEqual([review(runnerSubject, false), review(runnerSubject, false)]);
      expect(kube.calls.map((c) => c.error)).toEqual([
        expect.stringContaining('cryptographic'),
        expect.stringContaining('deleted'),
      ]);
      expect(await vault.tokens(mount)).toEqual([]);
      // The re-created account logs in with a token of its own.
      const fresh = await open(tokenFile(await kube.serviceAccountToken(runner, { audiences: [AUDIENCE] })));
      await fresh.close();
      expect(kube.calls).toHaveLength(3);
      expect(kube.calls[2]).toEqual(review(runnerSubject, true));
    });
  },
);
