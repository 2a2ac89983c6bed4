import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEV_AUDIENCE, DEV_USERS, DevIdp } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt, REPO_ROOT } from '../support/cli.js';
import { loginAs } from '../support/dev-login.js';
import { keyValueConnectionUsers, postgresEndpoint, postgresRoleExists } from '../support/leased-postgres.js';
import { vaultApi, VaultApiError } from '../support/real-vault.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import {
  connectPostgres,
  connectRedis,
  describeIfPresent,
  postgresUrl,
  probeService,
  redisUrl,
  vaultAddr,
  vaultRootToken,
  type ProbeResult,
} from '../support/services.js';
import { backendsYaml } from '../support/vault-proxy.js';

/**
 * Issue #12, done when: the operator's Vault setup of docs/identity.md §4, replayed as written,
 * serves a Vault-backed keyvalue namespace with one leased PostgreSQL role and one leased Redis
 * ACL user per caller, and a caller admitted only by a `user:` grant, whose token has no `groups`
 * claim, is served.
 *
 * The test runs the doc's `sh replay` blocks, unchanged and in order, with a `vault` on PATH that is
 * the real OpenBao CLI, against the real OpenBao, PostgreSQL and Redis of scripts/test-services.sh.
 * Only the doc's variables are the test's: the loopback services, a development IdP as the issuer,
 * and a namespace, JWT mount and schema of this run's own. If the doc's steps stop working, the
 * doc (or the product) is what to fix.
 */

const DOC = join(REPO_ROOT, 'docs/identity.md');

/** The shell blocks of a markdown text whose info string is `sh replay`, in order. */
function replayBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh replay\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** A file on PATH, or undefined. */
function onPath(name: string): string | undefined {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .map((dir) => join(dir, name))
    .find((file) => existsSync(file));
}

/** The real Vault, PostgreSQL and Redis, the `bao` binary and psql, or why not. */
async function presence(): Promise<ProbeResult> {
  const missing: string[] = [];
  for (const service of ['vault', 'postgres', 'redis'] as const) {
    const probe = await probeService(service);
    if (!probe.ok) missing.push(`${service}: ${probe.reason}`);
  }
  const bao = process.env.PRISM_TEST_BAO_BIN;
  if (!bao || !existsSync(bao)) missing.push('the bao CLI: PRISM_TEST_BAO_BIN names no file');
  if (!onPath('psql')) missing.push('psql is not on PATH');
  return missing.length === 0
    ? { ok: true }
    : {
        ok: false,
        reason: `${missing.join('; ')} (run 'bash scripts/test-services.sh up' and eval its env)`,
      };
}

/** Runs a bash script; resolves with its exit status and its output (stdout, then stderr). */
function runScript(
  file: string,
  cwd: string,
  env: Record<string, string>,
): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [file], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

const CAROL = { email: 'carol@example.com', name: 'Carol' }; // no groups: her tokens carry none

describeIfPresent(
  'vault, postgres, redis, the bao CLI and psql',
  await presence(),
  "the operator's Vault setup of docs/identity.md §4, replayed word for word",
  () => {
    const suffix = randomBytes(3).toString('hex');
    const namespace = `docs-${suffix}`;
    const mount = `jwt-docs-${suffix}`;
    const schema = `prism_docs_${suffix}`;
    const roles = { cache: `prism-${namespace}-cache-store`, ledger: `prism-${namespace}-ledger-store` };
    const idp = new DevIdp({ users: [...DEV_USERS, CAROL] });
    const tokens: Record<string, string> = {};
    let replay: { status: number | null; output: string };
    let proxy: RunningServer | undefined;
    let endpoint = '';
    let stopped = false;

    /** Redis ACL users whose keys are this namespace's (the leased ones), sorted. */
    const redisUsers = async (): Promise<string[]> => {
      const admin = connectRedis();
      try {
        const lines = (await admin.acl('LIST')) as string[];
        return lines
          .filter((line) => line.includes(` ~${namespace}:* `))
          .map((line) => line.split(' ')[1]!)
          .sort();
      } finally {
        admin.disconnect();
      }
    };
    /** Users with a connection open on Redis. */
    const redisClientUsers = async (): Promise<string[]> => {
      const admin = connectRedis();
      try {
        const list = (await admin.client('LIST')) as string;
        return [...new Set([...list.matchAll(/ user=(\S+) /g)].map((m) => m[1]!))];
      } finally {
        admin.disconnect();
      }
    };
    const leases = async (role: string): Promise<string[]> =>
      vaultApi<{ data: { keys: string[] } }>('LIST', `sys/leases/lookup/database/creds/${role}/`).then(
        (res) => res.data.keys,
        (err: unknown) => {
          if (err instanceof VaultApiError && err.status === 404) return [];
          throw err;
        },
      );
    const client = (who: string, pattern: 'cache' | 'ledger') => {
      if (endpoint === '') throw new Error('no proxy: the replay failed (see its test)');
      return new DataClient(endpoint, { namespace, pattern, token: tokens[who]! });
    };
    /** Sets `key` in both patterns as `who`, and reads back what `reads` holds there. */
    const setAndGet = async (who: string, key: string, value: string, reads = key) => {
      const got: string[] = [];
      for (const pattern of ['cache', 'ledger'] as const) {
        const c = client(who, pattern);
        try {
          await c.set(key, Buffer.from(value));
          const res = await c.get(reads);
          got.push(res.found ? Buffer.from(res.value).toString() : '(missing)');
        } finally {
          c.close();
        }
      }
      return got;
    };

    beforeAll(async () => {
      await ensureBuilt();
      await idp.start();
      for (const user of ['alice@example.com', 'bob@example.com', 'carol@example.com', 'dev@local.prism'])
        tokens[user] = await loginAs(idp, user);

      const dir = mkdtempSync(join(tmpdir(), 'prism-vault-docs-'));
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      symlinkSync(process.env.PRISM_TEST_BAO_BIN!, join(bin, 'vault'));
      const pg = new URL(postgresUrl());
      const redis = new URL(redisUrl());
      const script = ['set -euo pipefail', ...replayBlocks(readFileSync(DOC, 'utf8'))].join('\n');
      writeFileSync(join(dir, 'replay.sh'), script);
      // Asynchronously: Vault fetches the IdP's discovery document from this process meanwhile.
      replay = await runScript(join(dir, 'replay.sh'), dir, {
        PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
        HOME: dir,
        VAULT_ADDR: vaultAddr(),
        VAULT_TOKEN: vaultRootToken(),
        ISSUER: idp.issuer,
        AUDIENCE: DEV_AUDIENCE,
        JWT_MOUNT: mount,
        NAMESPACE: namespace,
        PG_HOST: pg.hostname,
        PG_PORT: pg.port || '5432',
        PG_DATABASE: pg.pathname.slice(1),
        PG_SSLMODE: 'disable',
        PG_SCHEMA: schema,
        PG_ADMIN_USER: decodeURIComponent(pg.username),
        PG_ADMIN_PASSWORD: decodeURIComponent(pg.password),
        REDIS_HOST: redis.hostname,
        REDIS_PORT: redis.port || '6379',
        // The test Redis has no password: its default user accepts any, and the plugin needs one.
        REDIS_ADMIN_USER: decodeURIComponent(redis.username) || 'default',
        REDIS_ADMIN_PASSWORD: decodeURIComponent(redis.password) || 'no-password-set',
      });
      if (replay.status !== 0) return;

      const config = { backends: join(dir, 'backends.yaml'), namespaces: join(dir, 'namespaces') };
      writeFileSync(
        config.backends,
        backendsYaml({ postgres: postgresEndpoint(), redis: redisUrl(), memstore: 'memory://' }),
      );
      mkdirSync(config.namespaces);
      writeFileSync(
        join(config.namespaces, `${namespace}.yaml`),
        [
          `namespace: ${namespace}`,
          'team: commerce',
          'patterns:',
          '  - { name: cache, type: keyvalue, slots: { store: { backend: redis } } }',
          '  - { name: ledger, type: keyvalue, slots: { store: { backend: postgres } } }',
          '  - { name: sessions, type: session-manager, slots: { store: { backend: memstore } } }',
          'auth:',
          '  enabled: true',
          `  issuer: ${idp.issuer}`,
          `  audiences: [${DEV_AUDIENCE}]`,
          '  vault:',
          '    enabled: true',
          `    address: ${vaultAddr()}`,
          `    role: prism-${namespace}`,
          `    auth_mount: ${mount}`,
          'access:',
          '  owners: [{ team: commerce }]',
          '  consumers:',
          "    - { subject: 'group:analytics', permissions: [read, write] }",
          "    - { subject: 'user:carol@example.com', permissions: [read, write] }",
          '',
        ].join('\n'),
      );
      // No --vault-* flags: the namespace's own auth.vault says where to log in.
      proxy = await startProxy(config, ['--log-level', 'debug'], { PRISM_VAULT_JWT: '' });
      endpoint = `127.0.0.1:${proxy.ready.port as number}`;
    }, 180_000);

    afterAll(async () => {
      if (proxy && !stopped) await proxy.stop();
      for (const role of Object.values(roles)) {
        await vaultApi('PUT', `sys/leases/revoke-prefix/database/creds/${role}`).catch(() => undefined);
        await vaultApi('DELETE', `database/roles/${role}`).catch(() => undefined);
      }
      await vaultApi('DELETE', `sys/policies/acl/prism-${namespace}`).catch(() => undefined);
      await vaultApi('DELETE', `sys/auth/${mount}`).catch(() => undefined);
      // The doc's connections (prism-postgres, prism-redis) stay: a run next to this one uses them.
      const admin = await connectPostgres();
      try {
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await admin.end();
      }
      await idp.stop();
    });

    it('runs every `sh replay` block of §4 without an error', () => {
      expect(replayBlocks(readFileSync(DOC, 'utf8')).length).toBeGreaterThanOrEqual(5);
      expect(replay.output).not.toMatch(/^Error /m);
      expect({ status: replay.status, output: replay.status === 0 ? '' : replay.output }).toEqual({
        status: 0,
        output: '',
      });
    });

    it('gives alice her own leased PostgreSQL role and Redis ACL user', async () => {
      expect(await setAndGet('alice@example.com', 'greeting', 'hello from alice')).toEqual([
        'hello from alice',
        'hello from alice',
      ]);
      const [pgUser] = await keyValueConnectionUsers(namespace);
      expect(await keyValueConnectionUsers(namespace)).toEqual([pgUser]);
      expect(await postgresRoleExists(pgUser!)).toBe(true);
      expect(await redisUsers()).toHaveLength(1);
      expect(await redisClientUsers()).toContain((await redisUsers())[0]);
      expect(await leases(roles.ledger)).toHaveLength(1);
      expect(await leases(roles.cache)).toHaveLength(1);

      // Her next calls reuse her session: nothing new is leased.
      expect(await setAndGet('alice@example.com', 'greeting', 'hello again')).toEqual([
        'hello again',
        'hello again',
      ]);
      expect(await leases(roles.ledger)).toHaveLength(1);
      expect(await leases(roles.cache)).toHaveLength(1);
    });

    it('gives bob, granted through his group, a second role and user of his own on the same data', async () => {
      const [aliceRole] = await keyValueConnectionUsers(namespace);
      const [aliceRedis] = await redisUsers();
      expect(await setAndGet('bob@example.com', 'from-bob', 'hello from bob', 'greeting')).toEqual([
        'hello again',
        'hello again',
      ]);
      const pgUsers = await keyValueConnectionUsers(namespace);
      expect(pgUsers).toHaveLength(2);
      expect(pgUsers).toContain(aliceRole);
      const users = await redisUsers();
      expect(users).toHaveLength(2);
      expect(users).toContain(aliceRedis);
      const connected = await redisClientUsers();
      for (const user of users) expect(connected).toContain(user);
      expect(await leases(roles.ledger)).toHaveLength(2);
      expect(await leases(roles.cache)).toHaveLength(2);
    });

    it('serves carol, admitted only by a user: grant, whose token has no groups claim', async () => {
      expect(decodeJwt(tokens['carol@example.com']!)).not.toHaveProperty('groups');
      expect(await setAndGet('carol@example.com', 'from-carol', 'hello from carol')).toEqual([
        'hello from carol',
        'hello from carol',
      ]);
      expect(await keyValueConnectionUsers(namespace)).toHaveLength(3);
      expect(await redisUsers()).toHaveLength(3);
    });

    it('refuses a caller without a grant before Vault leases anything for him', async () => {
      const c = client('dev@local.prism', 'cache');
      try {
        const err = (await c.get('greeting').catch((e: unknown) => e)) as { code: string };
        expect(err.code).toBe('E_PERMISSION_DENIED');
      } finally {
        c.close();
      }
      expect(await leases(roles.cache)).toHaveLength(3);
    });

    it('revokes every leased role and ACL user when the proxy stops', async () => {
      const pgUsers = await keyValueConnectionUsers(namespace);
      expect(pgUsers).toHaveLength(3);
      expect(await redisUsers()).toHaveLength(3);
      stopped = true;
      expect(await proxy!.stop()).toBe(0);
      for (const user of pgUsers) expect(await postgresRoleExists(user)).toBe(false);
      expect(await redisUsers()).toEqual([]);
      expect(await leases(roles.ledger)).toEqual([]);
      expect(await leases(roles.cache)).toEqual([]);
    });
  },
);
