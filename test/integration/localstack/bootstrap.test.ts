import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DevIdp } from '../../../src/auth/dev-idp.js';
import {
  bootstrapVault,
  ensurePostgresDatabase,
  ensureSessionOwner,
  renderDexConfig,
  SESSION_OWNER_ROLE,
  VAULT_POLICY,
  type VaultBootstrap,
} from '../../../src/localstack/bootstrap.js';
import { loadStackConfig, type NetworkMode } from '../../../src/localstack/catalog.js';
import { PrismError } from '../../../src/errors.js';
import { REPO_ROOT } from '../../support/cli.js';
import { freePort } from '../../support/ports.js';
import { connectPostgres, describeWithService, postgresUrl, uniqueName } from '../../support/services.js';
import { VaultStandin } from '../../support/vault-standin.js';

/**
 * The Docker stack's bootstrap without Docker: Vault's writes go to the Vault stand-in (which
 * checks the JWKS URL and the database connection as Vault does), the database statements run on
 * the real PostgreSQL of scripts/test-services.sh, and Dex's configuration is rendered and parsed.
 */
const catalog = loadStackConfig({ packageRoot: REPO_ROOT });
const vaultComponent = catalog.components.find((c) => c.name === 'vault')!;
const ROOT_TOKEN = vaultComponent.env.VAULT_DEV_ROOT_TOKEN_ID!;

/** Vault's postgres plugin fills {{expiration}} in this layout (Go's "2006-01-02 15:04:05-0700"). */
function vaultExpiration(at: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${at.getUTCFullYear()}-${p(at.getUTCMonth() + 1)}-${p(at.getUTCDate())} ` +
    `${p(at.getUTCHours())}:${p(at.getUTCMinutes())}:${p(at.getUTCSeconds())}+0000`
  );
}

function fill(statement: string, values: Record<string, string>): string {
  return statement.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => values[key] ?? whole);
}

/** The policy's rules as path → capabilities. */
function policyRules(policy: string): Record<string, string[]> {
  const rules: Record<string, string[]> = {};
  for (const m of policy.matchAll(/path "([^"]+)" \{ capabilities = \[([^\]]*)\] \}/g)) {
    rules[m[1]!] = [...m[2]!.matchAll(/"([^"]+)"/g)].map((c) => c[1]!);
  }
  return rules;
}

await describeWithService('postgres', 'bootstrapping Vault for the Docker stack', () => {
  const pgUrl = new URL(postgresUrl());
  const postgres = {
    host: pgUrl.hostname,
    port: Number(pgUrl.port),
    database: pgUrl.pathname.slice(1),
    user: decodeURIComponent(pgUrl.username),
    password: decodeURIComponent(pgUrl.password),
  };
  let idp: DevIdp;
  let jwksUrl: string;
  const opened: VaultStandin[] = [];

  const standin = async () => {
    const vault = new VaultStandin({ issuer: idp.issuer, roles: {}, rootToken: ROOT_TOKEN });
    opened.push(vault);
    await vault.start();
    return vault;
  };
  const settings = (vault: VaultStandin, more: Partial<VaultBootstrap> = {}): VaultBootstrap => ({
    address: vault.address,
    rootToken: ROOT_TOKEN,
    issuer: idp.issuer,
    jwksUrl,
    audience: 'prismctl',
    postgres,
    roles: ['prism', 'analytics'],
    ...more,
  });

  beforeAll(async () => {
    idp = new DevIdp();
    await idp.start();
    const discovery = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    jwksUrl = ((await discovery.json()) as { jwks_uri: string }).jwks_uri;
  });

  afterAll(async () => {
    for (const vault of opened) await vault.close();
    await idp?.stop();
  });

  it('enables JWT auth, writes the policy and roles, then the database engine, in this order', async () => {
    const vault = await standin();
    const steps = await bootstrapVault(settings(vault));
    const writes = [
      'POST sys/auth/jwt',
      'POST auth/jwt/config',
      `PUT sys/policies/acl/${VAULT_POLICY}`,
      'POST auth/jwt/role/prism',
      'POST auth/jwt/role/analytics',
      'POST sys/mounts/database',
      'POST database/config/prism-postgres',
      'POST database/roles/prism',
      'POST database/roles/analytics',
    ];
    expect(vault.writes.map((w) => `${w.method} ${w.path}`)).toEqual(writes);
    expect(steps).toEqual(['GET sys/auth', ...writes.slice(0, 5), 'GET sys/mounts', ...writes.slice(5)]);
    expect(vault.authMounts.get('jwt/')?.type).toBe('jwt');
    expect(vault.secretMounts.get('database/')?.type).toBe('database');
  });

  it("binds JWT auth to the issuer, fetching keys from the issuer's JWKS", async () => {
    const vault = await standin();
    await bootstrapVault(settings(vault));
    expect(vault.jwtConfigs.get('jwt')).toEqual({ jwks_url: jwksUrl, bound_issuer: idp.issuer });
  });

  it('writes a policy that lets a session read credentials, renew and revoke leases, and its own token', async () => {
    const vault = await standin();
    await bootstrapVault(settings(vault));
    expect(policyRules(vault.policies.get(VAULT_POLICY)!)).toEqual({
      'database/creds/*': ['read'],
      'sys/leases/renew': ['update'],
      'sys/leases/revoke': ['update'],
      'auth/token/renew-self': ['update'],
      'auth/token/revoke-self': ['update'],
    });
  });

  it('writes one JWT role per Vault role, bound to the audience and granting the policy', async () => {
    const vault = await standin();
    await bootstrapVault(settings(vault));
    const role = {
      role_type: 'jwt',
      user_claim: 'sub',
      groups_claim: 'groups',
      bound_audiences: ['prismctl'],
      token_policies: [VAULT_POLICY],
      token_ttl: '1h',
    };
    expect(Object.fromEntries(vault.jwtRoles)).toEqual({ 'jwt/prism': role, 'jwt/analytics': role });
  });

  it('points the database engine at the given PostgreSQL, allowing only the Vault roles', async () => {
    const vault = await standin();
    await bootstrapVault(settings(vault));
    expect(Object.fromEntries(vault.databaseConnections)).toEqual({
      'prism-postgres': {
        plugin_name: 'postgresql-database-plugin',
        connection_url: `postgresql://{{username}}:{{password}}@${postgres.host}:${postgres.port}/${postgres.database}?sslmode=disable`,
        username: postgres.user,
        password: postgres.password,
        allowed_roles: ['prism', 'analytics'],
      },
    });
  });

  it('writes database roles with creation and revocation statements on that connection', async () => {
    const vault = await standin();
    await bootstrapVault(settings(vault));
    const role = {
      db_name: 'prism-postgres',
      creation_statements: [
        `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE prism_owner;`,
        `ALTER ROLE "{{name}}" SET role = prism_owner;`,
      ],
      revocation_statements: [
        `REASSIGN OWNED BY "{{name}}" TO prism_owner;`,
        `DROP OWNED BY "{{name}}";`,
        `DROP ROLE IF EXISTS "{{name}}";`,
      ],
      default_ttl: '1h',
      max_ttl: '24h',
    };
    expect(Object.fromEntries(vault.databaseRoles)).toEqual({ prism: role, analytics: role });
  });

  it('is idempotent: a second run neither enables JWT auth nor mounts the database engine again', async () => {
    const vault = await standin();
    await bootstrapVault(settings(vault));
    const before = vault.writes.length;
    const steps = await bootstrapVault(settings(vault));
    const again = vault.writes.slice(before).map((w) => `${w.method} ${w.path}`);
    expect(again).toEqual([
      'POST auth/jwt/config',
      `PUT sys/policies/acl/${VAULT_POLICY}`,
      'POST auth/jwt/role/prism',
      'POST auth/jwt/role/analytics',
      'POST database/config/prism-postgres',
      'POST database/roles/prism',
      'POST database/roles/analytics',
    ]);
    expect(steps).toEqual(['GET sys/auth', ...again.slice(0, 4), 'GET sys/mounts', ...again.slice(4)]);
    expect(vault.writes.filter((w) => w.path === 'sys/auth/jwt')).toHaveLength(1);
    expect(vault.writes.filter((w) => w.path === 'sys/mounts/database')).toHaveLength(1);
  });

  it('without PostgreSQL, leaves the database engine alone', async () => {
    const vault = await standin();
    const steps = await bootstrapVault({ ...settings(vault), postgres: undefined });
    expect(steps).not.toContain('GET sys/mounts');
    expect(vault.secretMounts.has('database/')).toBe(false);
    expect(vault.databaseConnections.size).toBe(0);
  });

  it('with a wrong root token, fails as unavailable naming the first step, never the token', async () => {
    const vault = await standin();
    const wrong = `hvs.${randomBytes(12).toString('hex')}`;
    const err = await bootstrapVault(settings(vault, { rootToken: wrong })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrismError);
    expect((err as PrismError).code).toBe('E_UNAVAILABLE');
    expect((err as PrismError).message).toBe('Vault bootstrap: GET sys/auth answered 403: permission denied');
    expect(JSON.stringify(err)).not.toContain(wrong);
    expect(String((err as Error).stack)).not.toContain(wrong);
    expect(vault.writes).toEqual([]);
  });

  it('when Vault cannot fetch the JWKS, fails naming the JWT config step and why', async () => {
    const vault = await standin();
    const closed = `http://127.0.0.1:${await freePort()}/dex/keys`;
    const err = await bootstrapVault(settings(vault, { jwksUrl: closed })).catch((e: unknown) => e);
    expect((err as PrismError).code).toBe('E_UNAVAILABLE');
    expect((err as PrismError).message).toMatch(
      /^Vault bootstrap: POST auth\/jwt\/config answered 400: error checking jwks URL: /,
    );
    expect((err as PrismError).message).not.toContain(ROOT_TOKEN);
  });

  it('when Vault cannot reach PostgreSQL, fails naming the database config step', async () => {
    const vault = await standin();
    const err = await bootstrapVault(
      settings(vault, { postgres: { ...postgres, password: 'not-the-password' } }),
    ).catch((e: unknown) => e);
    expect((err as PrismError).code).toBe('E_UNAVAILABLE');
    expect((err as PrismError).message).toBe(
      'Vault bootstrap: POST database/config/prism-postgres answered 400: error creating database object: ' +
        `error verifying connection: password authentication failed for user "${postgres.user}"`,
    );
  });

  it('when Vault does not answer, fails as unavailable naming the first step', async () => {
    const address = `http://127.0.0.1:${await freePort()}`;
    const err = await bootstrapVault({ ...settings(await standin()), address }).catch((e: unknown) => e);
    expect((err as PrismError).code).toBe('E_UNAVAILABLE');
    expect((err as PrismError).message).toMatch(/^Vault bootstrap: GET sys\/auth failed: /);
  });

  it('leases share what one of them creates, and it outlives the lease that created it', async () => {
    const vault = await standin();
    await bootstrapVault(settings(vault));
    const role = vault.databaseRoles.get('prism')!;
    const url = new URL(postgresUrl());
    await ensureSessionOwner({
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: url.pathname.slice(1),
    });
    const lease = () => ({
      name: `v-jwt-prism-${randomBytes(5).toString('hex')}`,
      password: randomBytes(18).toString('base64url'),
      expiration: vaultExpiration(new Date(Date.now() + 3600_000)),
    });
    const connectAs = (values: { name: string; password: string }) => {
      const as = new URL(postgresUrl());
      as.username = values.name;
      as.password = values.password;
      return new pg.Client({ connectionString: as.toString(), connectionTimeoutMillis: 3000 });
    };
    const [first, second] = [lease(), lease()];
    const table = `prism_bootstrap_${randomBytes(4).toString('hex')}`;
    const admin = await connectPostgres();
    // The stack's postgres image makes its POSTGRES_USER a superuser; the test server's user has
    // CREATEROLE only, so it takes membership where REASSIGN/DROP OWNED need the roles' privileges.
    await admin.query(`GRANT ${SESSION_OWNER_ROLE} TO CURRENT_USER`);
    try {
      for (const values of [first, second]) {
        for (const st of role.creation_statements as string[]) await admin.query(fill(st, values));
      }
      const a = connectAs(first);
      await a.connect();
      try {
        const { rows } = await a.query<{ session: string; acting: string }>(
          'SELECT session_user AS session, current_user AS acting',
        );
        expect(rows).toEqual([{ session: first.name, acting: SESSION_OWNER_ROLE }]);
        await a.query(`CREATE TABLE ${table} (v int)`);
        await a.query(`INSERT INTO ${table} VALUES (1)`);
      } finally {
        await a.end();
      }
      const b = connectAs(second);
      await b.connect();
      try {
        await b.query(`INSERT INTO ${table} VALUES (2)`);
        await admin.query(`GRANT "${first.name}" TO CURRENT_USER`);
        for (const st of role.revocation_statements as string[]) await admin.query(fill(st, first));
        expect((await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [first.name])).rowCount).toBe(
          0,
        );
        await expect(connectAs(first).connect()).rejects.toThrow(
          /password authentication failed|does not exist/,
        );
        const rows = await b.query<{ v: number }>(`SELECT v FROM ${table} ORDER BY v`);
        expect(rows.rows.map((r) => r.v)).toEqual([1, 2]);
      } finally {
        await b.end();
      }
      await admin.query(`GRANT "${second.name}" TO CURRENT_USER`);
      for (const st of role.revocation_statements as string[]) await admin.query(fill(st, second));
      expect((await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [second.name])).rowCount).toBe(
        0,
      );
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      for (const values of [first, second]) {
        await admin.query(`DROP ROLE IF EXISTS "${values.name}"`).catch(() => undefined);
      }
      await admin.end();
    }
  });
});

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
