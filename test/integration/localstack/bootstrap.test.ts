import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEV_AUDIENCE, DEV_USERS, DevIdp } from '../../../src/auth/dev-idp.js';
import { validateSources } from '../../../src/config/validate.js';
import { PrismError } from '../../../src/errors.js';
import type { NamespaceRequest } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import {
  bootstrapVault,
  ensurePostgresDatabase,
  ensureSessionOwner,
  redisAclRules,
  renderDexConfig,
  SESSION_OWNER_ROLE,
  vaultNamespaces,
  type VaultBootstrap,
} from '../../../src/localstack/bootstrap.js';
import { loadStackConfig, type NetworkMode } from '../../../src/localstack/catalog.js';
import { REPO_ROOT } from '../../support/cli.js';
import { loginAs } from '../../support/dev-login.js';
import { postgresEndpoint, postgresRoleExists } from '../../support/leased-postgres.js';
import { freePort } from '../../support/ports.js';
import { vaultApi, VaultApiError } from '../../support/real-vault.js';
import {
  connectPostgres,
  connectRedis,
  describeWithService,
  describeWithServices,
  postgresUrl,
  redisUrl,
  uniqueName,
  vaultAddr,
  vaultRootToken,
} from '../../support/services.js';

/**
 * The Docker stack's Vault bootstrap against the real OpenBao of scripts/test-services.sh, with
 * its real PostgreSQL and Redis behind the database secrets engine: the roles it writes are the
 * ones the control plane derives, a person logs in with a real JWT from the development IdP and
 * leases each of them, and what Vault creates works and is gone after revocation. Every name the
 * bootstrap writes (auth mount, connections, namespaces and so roles and policies) is unique to
 * the run, and removed afterwards.
 */

/** The namespaces of one YAML text, validated as `namespace apply` would. */
function namespacesOf(text: string): NamespaceRequest[] {
  const { report, loaded } = validateSources([{ file: 'ns.yaml', text }]);
  if (report.errors > 0) throw new Error(JSON.stringify(report.diagnostics));
  return loaded.map((l) => l.request);
}

function vaultNamespaceYaml(name: string, issuer: string, patterns: string[]): string {
  return [
    `namespace: ${name}`,
    'team: commerce',
    'patterns:',
    ...patterns.map((p) => `  - ${p}`),
    '  - { name: sessions, type: session-manager, slots: { store: { backend: redis } } }',
    'auth:',
    '  enabled: true',
    `  issuer: ${issuer}`,
    `  audiences: [${DEV_AUDIENCE}]`,
    `  vault: { enabled: true, address: ${vaultAddr()}, role: prism-${name} }`,
    '',
  ].join('\n');
}

/** A Vault call with a session's own token (not root). */
async function asSession<T = Record<string, unknown>>(
  token: string,
  method: 'GET' | 'PUT' | 'POST',
  path: string,
  body?: unknown,
): Promise<T> {
  return vaultApi<T>(method, path, body, token);
}

interface Lease {
  lease_id: string;
  data: { username: string; password: string };
}

await describeWithServices(
  ['vault', 'postgres', 'redis'],
  'bootstrapping the real Vault for the Docker stack',
  () => {
    const suffix = randomBytes(3).toString('hex');
    const mount = `jwt-bs${suffix}`;
    const prefix = `prism-bs${suffix}`;
    const shop = `bs${suffix}-shop`;
    const other = `bs${suffix}-other`;
    const pgUrl = new URL(postgresUrl());
    const redis = new URL(redisUrl());
    const idp = new DevIdp({ users: [...DEV_USERS, { email: 'carol@example.com', name: 'Carol' }] });
    let settings: VaultBootstrap;
    let steps: string[];
    const opened: Array<{ end(): Promise<unknown> } | { quit(): Promise<unknown> }> = [];

    const role = (ns: string, pattern: string, slot: string) => `prism-${ns}-${pattern}-${slot}`;
    const login = async (email: string, ns = shop) => {
      const jwt = await loginAs(idp, email);
      const res = await vaultApi<{ auth: { client_token: string } }>(
        'POST',
        `auth/${mount}/login`,
        { role: `prism-${ns}`, jwt },
        '',
      );
      return { jwt, token: res.auth.client_token };
    };
    const lease = (token: string, databaseRole: string) =>
      asSession<Lease>(token, 'GET', `database/creds/${databaseRole}`);

    beforeAll(async () => {
      await idp.start();
      const jwksUrl = (
        (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string }
      ).jwks_uri;
      const namespaces = vaultNamespaces(
        namespacesOf(
          [
            vaultNamespaceYaml(shop, idp.issuer, [
              '{ name: cache, type: keyvalue, slots: { store: { backend: redis } } }',
              '{ name: ledger, type: keyvalue, slots: { store: { backend: postgres } } }',
              '{ name: events, type: producer, slots: { sink: { backend: kafka }, state: { backend: postgres } }, settings: { topic: shop.events, dedup_window: 5m } }',
              '{ name: billing, type: consumer, slots: { source: { backend: nats } }, settings: { topic: shop.events, consumer_group: billing } }',
            ]),
            vaultNamespaceYaml(other, idp.issuer, [
              '{ name: cache, type: keyvalue, slots: { store: { backend: redis } } }',
            ]),
          ].join('---\n'),
        ),
        ['redis', 'postgres', 'kafka', 'nats', 'dex', 'vault'],
      );
      await ensureSessionOwner({
        port: Number(pgUrl.port),
        user: decodeURIComponent(pgUrl.username),
        password: decodeURIComponent(pgUrl.password),
        database: pgUrl.pathname.slice(1),
      });
      settings = {
        address: vaultAddr(),
        rootToken: vaultRootToken(),
        issuer: idp.issuer,
        jwksUrl,
        audience: 'prismctl',
        postgres: {
          host: pgUrl.hostname,
          port: Number(pgUrl.port),
          database: pgUrl.pathname.slice(1),
          user: decodeURIComponent(pgUrl.username),
          password: decodeURIComponent(pgUrl.password),
        },
        redis: { host: redis.hostname, port: Number(redis.port || 6379) },
        namespaces,
        authMount: mount,
        connectionPrefix: prefix,
      };
      steps = await bootstrapVault(settings);
    }, 60_000);

    afterAll(async () => {
      for (const client of opened.splice(0)) {
        await ('quit' in client ? client.quit() : client.end()).catch(() => undefined);
      }
      const cleanup = async (method: 'PUT' | 'DELETE', path: string) =>
        vaultApi(method, path).catch(() => undefined);
      for (const ns of settings?.namespaces ?? []) {
        for (const r of ns.databaseRoles) {
          await cleanup('PUT', `sys/leases/revoke-prefix/database/creds/${r.name}`);
          await cleanup('DELETE', `database/roles/${r.name}`);
        }
        await cleanup('DELETE', `sys/policies/acl/${ns.loginRole}`);
      }
      await cleanup('DELETE', `database/config/${prefix}-postgres`);
      await cleanup('DELETE', `database/config/${prefix}-redis`);
      await cleanup('DELETE', `sys/auth/${mount}`);
      await idp.stop();
    });

    it('derives, per namespace, exactly the roles of its postgres and redis slots, and none for kafka or nats', () => {
      expect(settings.namespaces).toEqual([
        {
          namespace: shop,
          loginRole: `prism-${shop}`,
          audiences: [DEV_AUDIENCE],
          databaseRoles: [
            { name: role(shop, 'cache', 'store'), backend: 'redis' },
            { name: role(shop, 'ledger', 'store'), backend: 'postgres' },
            { name: role(shop, 'events', 'state'), backend: 'postgres' },
          ],
        },
        {
          namespace: other,
          loginRole: `prism-${other}`,
          audiences: [DEV_AUDIENCE],
          databaseRoles: [{ name: role(other, 'cache', 'store'), backend: 'redis' }],
        },
      ]);
    });

    it('puts each role on its connection, whose allowed_roles name exactly the roles it serves', async () => {
      const config = async (name: string) =>
        (await vaultApi<{ data: Record<string, unknown> }>('GET', `database/config/${name}`)).data;
      expect(await config(`${prefix}-postgres`)).toMatchObject({
        plugin_name: 'postgresql-database-plugin',
        allowed_roles: [role(shop, 'events', 'state'), role(shop, 'ledger', 'store')],
      });
      expect(await config(`${prefix}-redis`)).toMatchObject({
        plugin_name: 'redis-database-plugin',
        allowed_roles: [role(other, 'cache', 'store'), role(shop, 'cache', 'store')],
      });
      const dbOf = async (r: string) =>
        (await vaultApi<{ data: { db_name: string } }>('GET', `database/roles/${r}`)).data.db_name;
      expect(await dbOf(role(shop, 'ledger', 'store'))).toBe(`${prefix}-postgres`);
      expect(await dbOf(role(shop, 'cache', 'store'))).toBe(`${prefix}-redis`);
      const listed = await vaultApi<{ data: { keys: string[] } }>('LIST', 'database/roles');
      expect(listed.data.keys.filter((k) => k.includes(`bs${suffix}`)).sort()).toEqual(
        [
          role(other, 'cache', 'store'),
          role(shop, 'cache', 'store'),
          role(shop, 'events', 'state'),
          role(shop, 'ledger', 'store'),
        ].sort(),
      );
    });

    it('writes a login role per namespace bound to its audience, without groups_claim, and a policy naming only its roles', async () => {
      const jwtRole = (
        await vaultApi<{ data: Record<string, unknown> }>('GET', `auth/${mount}/role/prism-${shop}`)
      ).data;
      expect(jwtRole).toMatchObject({
        role_type: 'jwt',
        user_claim: 'sub',
        bound_audiences: [DEV_AUDIENCE],
        token_policies: [`prism-${shop}`],
      });
      expect(jwtRole.groups_claim ?? '').toBe('');
      expect(jwtRole.bound_claims ?? null).toBeNull();
      const policy = (await vaultApi<{ data: { policy: string } }>('GET', `sys/policies/acl/prism-${shop}`))
        .data.policy;
      expect([...policy.matchAll(/path "database\/creds\/([^"]+)"/g)].map((m) => m[1])).toEqual([
        role(shop, 'cache', 'store'),
        role(shop, 'events', 'state'),
        role(shop, 'ledger', 'store'),
      ]);
    });

    it('lets alice lease every role of her namespace with her own JWT, and no role of another', async () => {
      const { token } = await login('alice@example.com');
      for (const r of settings.namespaces[0]!.databaseRoles) {
        const leased = await lease(token, r.name);
        expect(leased.data.username).not.toBe('');
        await asSession(token, 'PUT', 'sys/leases/revoke', { lease_id: leased.lease_id });
      }
      const refused = await lease(token, role(other, 'cache', 'store')).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(VaultApiError);
      expect((refused as VaultApiError).status).toBe(403);
    });

    it('admits a token without a groups claim (a person granted by user:)', async () => {
      const { jwt, token } = await login('carol@example.com');
      expect(decodeJwt(jwt)).not.toHaveProperty('groups');
      const leased = await lease(token, role(shop, 'cache', 'store'));
      expect(leased.data.username).not.toBe('');
      await asSession(token, 'PUT', 'sys/leases/revoke', { lease_id: leased.lease_id });
    });

    it('leases PostgreSQL roles that act as the shared owner, share what one creates, and are dropped on revocation', async () => {
      const { token } = await login('alice@example.com');
      const [first, second] = [
        await lease(token, role(shop, 'ledger', 'store')),
        await lease(token, role(shop, 'events', 'state')),
      ];
      const connectAs = async (l: Lease) => {
        const url = new URL(postgresEndpoint());
        url.username = l.data.username;
        url.password = l.data.password;
        const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 3000 });
        await client.connect();
        return client;
      };
      const table = `prism_bs_${suffix}`;
      const a = await connectAs(first);
      try {
        const { rows } = await a.query('SELECT session_user AS session, current_user AS acting');
        expect(rows).toEqual([{ session: first.data.username, acting: SESSION_OWNER_ROLE }]);
        await a.query(`CREATE TABLE ${table} (v int)`);
        await a.query(`INSERT INTO ${table} VALUES (1)`);
      } finally {
        await a.end();
      }
      const b = await connectAs(second);
      opened.push(b);
      try {
        await b.query(`INSERT INTO ${table} VALUES (2)`);
        await asSession(token, 'PUT', 'sys/leases/revoke', { lease_id: first.lease_id });
        expect(await postgresRoleExists(first.data.username)).toBe(false);
        await expect(connectAs(first)).rejects.toThrow(/password authentication failed|does not exist/);
        expect((await b.query(`SELECT v FROM ${table} ORDER BY v`)).rows).toEqual([{ v: 1 }, { v: 2 }]);
      } finally {
        await b.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
        await b.end();
      }
      await asSession(token, 'PUT', 'sys/leases/revoke', { lease_id: second.lease_id });
      expect(await postgresRoleExists(second.data.username)).toBe(false);
    });

    it("leases Redis users limited to the namespace's keys and channels, deleted on revocation", async () => {
      const { token } = await login('alice@example.com');
      const leased = await lease(token, role(shop, 'cache', 'store'));
      const { username, password } = leased.data;
      const admin = connectRedis();
      opened.push(admin);
      const user = connectRedis({ username, password, maxRetriesPerRequest: 0, retryStrategy: () => null });
      user.on('error', () => {}); // revocation closes its connection
      opened.push(user);
      expect(await user.set(`${shop}:greeting`, 'hello')).toBe('OK');
      expect(await user.get(`${shop}:greeting`)).toBe('hello');
      expect(await user.publish(`prism:${shop}:events`, 'x')).toBeGreaterThanOrEqual(0);
      await expect(user.get(`${other}:greeting`)).rejects.toThrow(/NOPERM/);
      await expect(user.publish(`prism:${other}:events`, 'x')).rejects.toThrow(/NOPERM/);
      expect(await user.xadd(`prism/stream:${shop}:events`, '*', 'payload', 'x')).toMatch(/^\d+-\d+$/);
      await expect(user.xadd(`prism/stream:${other}:events`, '*', 'payload', 'x')).rejects.toThrow(/NOPERM/);
      await expect(user.flushall()).rejects.toThrow(/NOPERM/);
      await expect(user.keys('*')).rejects.toThrow(/NOPERM/);
      const acl = (await admin.acl('LIST')) as string[];
      expect(acl.find((line) => line.startsWith(`user ${username} `))).toContain(
        `${redisAclRules(shop).slice(0, 2).join(' ')} resetchannels ${redisAclRules(shop)[2]}`,
      );
      const clients = (await admin.client('LIST')) as string;
      expect(clients).toContain(`user=${username} `);

      await asSession(token, 'PUT', 'sys/leases/revoke', { lease_id: leased.lease_id });
      expect(((await admin.acl('LIST')) as string[]).some((l) => l.startsWith(`user ${username} `))).toBe(
        false,
      );
      const probe = connectRedis();
      opened.push(probe);
      await expect(probe.auth(username, password)).rejects.toThrow(/WRONGPASS/);
      await admin.del(`${shop}:greeting`);
    });

    it('is idempotent: a second run enables and mounts nothing again and leaves the same roles', async () => {
      const again = await bootstrapVault(settings);
      expect(again).not.toContain(`POST sys/auth/${mount}`);
      expect(again).not.toContain('POST sys/mounts/database');
      expect(again.filter((s) => s.startsWith('POST database/roles/'))).toEqual(
        steps.filter((s) => s.startsWith('POST database/roles/')),
      );
      const { token } = await login('alice@example.com');
      const leased = await lease(token, role(shop, 'ledger', 'store'));
      await asSession(token, 'PUT', 'sys/leases/revoke', { lease_id: leased.lease_id });
    });

    it('refuses before writing anything when a namespace leases from a backend the stack gave Vault none of', async () => {
      const err = await bootstrapVault({ ...settings, redis: undefined, authMount: `${mount}-unused` }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PrismError);
      expect((err as PrismError).code).toBe('E_USAGE');
      expect((err as PrismError).message).toBe(
        `Vault bootstrap: namespace ${shop} leases redis users (role ${role(shop, 'cache', 'store')}), and the stack gave Vault no redis to create them in`,
      );
      const auths = await vaultApi<{ data: Record<string, unknown> }>('GET', 'sys/auth');
      expect(`${mount}-unused/` in auths.data).toBe(false);
    });

    it('with a wrong root token, fails as unavailable naming the first step, never the token', async () => {
      const wrong = `s.${randomBytes(12).toString('hex')}`;
      const err = await bootstrapVault({ ...settings, rootToken: wrong }).catch((e: unknown) => e);
      expect((err as PrismError).code).toBe('E_UNAVAILABLE');
      expect((err as PrismError).message).toBe(
        'Vault bootstrap: GET sys/auth answered 403: permission denied',
      );
      expect(JSON.stringify(err)).not.toContain(wrong);
      expect(String((err as Error).stack)).not.toContain(wrong);
    });

    it('when Vault cannot reach PostgreSQL as the given user, fails naming the database config step', async () => {
      const err = await bootstrapVault({
        ...settings,
        postgres: { ...settings.postgres!, password: 'not-the-password' },
      }).catch((e: unknown) => e);
      expect((err as PrismError).code).toBe('E_UNAVAILABLE');
      expect((err as PrismError).message).toContain(
        `Vault bootstrap: POST database/config/${prefix}-postgres answered 400: error creating database object: `,
      );
      expect((err as PrismError).message).toContain(
        `password authentication failed for user "${settings.postgres!.user}"`,
      );
      await bootstrapVault(settings); // puts the right password back
    });

    it('when Vault does not answer, fails as unavailable naming the first step', async () => {
      const address = `http://127.0.0.1:${await freePort()}`;
      const err = await bootstrapVault({ ...settings, address }).catch((e: unknown) => e);
      expect((err as PrismError).code).toBe('E_UNAVAILABLE');
      expect((err as PrismError).message).toMatch(/^Vault bootstrap: GET sys\/auth failed: /);
    });
  },
);

await describeWithService('postgres', "ensuring the stack's PostgreSQL database exists", () => {
  const port = Number(new URL(postgresUrl()).port);
  // The test server's user may not create databases; it may create a role that can.
  const maker = {
    user: `prism_dbmaker_${randomBytes(4).toString('hex')}`,
    password: randomBytes(12).toString('hex'),
  };
  const database = uniqueName('prism-dev');

  beforeAll(async () => {
    const admin = await connectPostgres();
    try {
      await admin.query(`CREATE ROLE "${maker.user}" LOGIN CREATEDB PASSWORD '${maker.password}'`);
    } finally {
      await admin.end();
    }
  });

  afterAll(async () => {
    const asMaker = new pg.Client({ host: '127.0.0.1', port, database: 'postgres', ...maker });
    await asMaker.connect();
    try {
      await asMaker.query(`DROP DATABASE IF EXISTS "${database}"`);
    } finally {
      await asMaker.end();
    }
    const admin = await connectPostgres();
    try {
      await admin.query(`DROP ROLE IF EXISTS "${maker.user}"`);
    } finally {
      await admin.end();
    }
  });

  it('creates a missing database, then reports it exists on the next call', async () => {
    expect(await ensurePostgresDatabase({ port, ...maker, database })).toBe(true);
    expect(await ensurePostgresDatabase({ port, ...maker, database })).toBe(false);
    const admin = await connectPostgres();
    try {
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      expect(found.rowCount).toBe(1);
    } finally {
      await admin.end();
    }
  });

  it('leaves an existing database alone without needing the right to create one', async () => {
    const url = new URL(postgresUrl());
    expect(
      await ensurePostgresDatabase({
        port,
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
        database: url.pathname.slice(1),
      }),
    ).toBe(false);
  });
});

describe("rendering Dex's configuration for the stack", () => {
  const render = (network: NetworkMode, ports: string[] = []) => {
    const config = loadStackConfig({ packageRoot: REPO_ROOT, overrides: { network, ports } });
    const dex = config.components.find((c) => c.name === 'dex')!;
    const text = renderDexConfig(REPO_ROOT, config, dex);
    return { text, doc: parse(text) as Record<string, unknown> };
  };

  it('on the stack network: the issuer on the host port, listening on every interface of the container', () => {
    const { doc } = render('bridge');
    expect(doc.issuer).toBe('http://127.0.0.1:5556/dex');
    expect(doc.web).toEqual({ http: '0.0.0.0:5556' });
  });

  it('on the stack network with a moved port: the issuer follows the host port, the listener stays inside', () => {
    const { doc } = render('bridge', ['dex=15556']);
    expect(doc.issuer).toBe('http://127.0.0.1:15556/dex');
    expect(doc.web).toEqual({ http: '0.0.0.0:5556' });
  });

  it('with host networking: issuer and listener on 127.0.0.1 and the same port', () => {
    const { doc } = render('host', ['dex=15556']);
    expect(doc.issuer).toBe('http://127.0.0.1:15556/dex');
    expect(doc.web).toEqual({ http: '127.0.0.1:15556' });
  });

  it('keeps the prismctl public client and the device-code grant', () => {
    const { doc } = render('bridge');
    expect(doc.staticClients).toEqual([{ id: 'prismctl', name: 'prismctl', public: true }]);
    expect((doc.oauth2 as { grantTypes: string[] }).grantTypes).toContain(
      'urn:ietf:params:oauth:grant-type:device_code',
    );
    expect((doc.staticPasswords as Array<{ email: string }>).map((p) => p.email)).toEqual([
      'dev@local.prism',
      'alice@example.com',
      'bob@example.com',
    ]);
  });

  it("keeps the template's comments and changes nothing but the issuer and the listener", () => {
    const { text, doc } = render('bridge', ['dex=15556']);
    const template = readFileSync(join(REPO_ROOT, 'templates/dex/config.yaml'), 'utf8');
    const comments = (s: string) => s.split('\n').filter((line) => line.trim().startsWith('#'));
    expect(comments(text)).toEqual(comments(template));
    const original = parse(template) as Record<string, unknown>;
    expect({ ...doc, issuer: original.issuer, web: original.web }).toEqual(original);
  });
});
