import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { deviceLogin } from '../../src/auth/login.js';
import { DEFAULT_SCOPES } from '../../src/auth/oidc-config.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { approveDeviceCode } from '../integration/auth/play-person.js';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { uniqueName } from '../support/services.js';

/**
 * The control plane with auth on: dev (prism-admins) and bob (analytics) log in with the device
 * flow against the development provider (the test plays each person); the admin lets admins write,
 * readers read, and refuses callers without a token.
 */
describe('an admin told neither --auth-issuer nor --no-auth', () => {
  it('refuses to start before it opens its store, and says why and how', async () => {
    const home = mkdtempSync(join(tmpdir(), 'prism-admin-noauth-'));
    const store = join(home, 'admin.db');
    const res = await runCli(['admin', 'serve', '--listen', '127.0.0.1:0', '--store', store], {
      env: { PRISM_HOME: home },
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      'error E_USAGE: the admin will not serve without authentication unless you say so: anyone who can reach it could apply and delete namespaces\n' +
        '  hint: pass --auth-issuer <OIDC issuer URL> (see docs/identity.md), or --no-auth for a control plane only you can reach\n',
    );
    expect(existsSync(store)).toBe(false);
  });

  it('refuses --no-auth beside --auth-issuer', async () => {
    const res = await runCli(['admin', 'serve', '--no-auth', '--auth-issuer', 'https://issuer.example']);
    expect(res.code).toBe(2);
    // oclif wraps its message at the terminal width.
    expect(res.stderr.replace(/\s*›\s*/g, ' ')).toContain(
      '--auth-issuer=https://issuer.example cannot also be provided when using --no-auth',
    );
  });
});

describe('an authenticated control plane', () => {
  const idp = new DevIdp();
  const devHome = mkdtempSync(join(tmpdir(), 'prism-admin-auth-dev-'));
  const bobHome = mkdtempSync(join(tmpdir(), 'prism-admin-auth-bob-'));
  const emptyHome = mkdtempSync(join(tmpdir(), 'prism-admin-auth-none-'));
  const name = uniqueName('authz');
  const file = join(mkdtempSync(join(tmpdir(), 'prism-admin-auth-ns-')), `${name}.yaml`);
  let admin: RunningAdmin;
  const tokens: string[] = [];

  const login = async (issuer: string, home: string, person: string) => {
    const cached = await deviceLogin(
      { issuer, clientId: 'prismctl', scopes: DEFAULT_SCOPES },
      new TokenCache(home),
      (p) => void approveDeviceCode(p.verificationUri, p.userCode, person),
      { intervalSeconds: 0.05 },
    );
    tokens.push(cached.accessToken);
  };

  beforeAll(async () => {
    await ensureBuilt();
    const issuer = await idp.start();
    await login(issuer, devHome, 'dev@local.prism');
    await login(issuer, bobHome, 'bob@example.com');
    writeFileSync(
      file,
      `namespace: ${name}\nteam: analytics\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`,
    );
    admin = await startAdmin({
      extraArgs: [
        ...['--auth-issuer', issuer, '--auth-audience', DEV_AUDIENCE],
        ...['--auth-admin-group', 'prism-admins', '--auth-reader-group', 'analytics'],
      ],
    });
  }, 60_000);

  afterAll(async () => {
    expect(await admin?.stop()).toBe(0);
    await idp.stop();
  });

  const cli = (home: string, ...args: string[]) =>
    runCli([...args, '--admin', admin.endpoint], { env: { PRISM_HOME: home, PRISM_TOKEN: '' } });

  it('lets an admin apply and records her email as the principal in the audit log', async () => {
    const applied = await cli(devHome, 'namespace', 'apply', file, '--json');
    expect(applied.stderr).toBe('');
    expect(JSON.parse(applied.stdout)[0]).toMatchObject({ namespace: name, outcome: 'created', version: 1 });
    const history = await cli(devHome, 'namespace', 'history', name, '--json');
    expect(JSON.parse(history.stdout)).toEqual([
      expect.objectContaining({ action: 'create', principal: 'dev@local.prism' }),
    ]);
  });

  it('lets a reader list and get namespaces', async () => {
    const list = await cli(bobHome, 'namespace', 'list', '--json');
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toContainEqual(expect.objectContaining({ name, version: 1 }));
    const got = await cli(bobHome, 'namespace', 'get', name);
    expect(got.code).toBe(0);
    expect(got.stdout).toContain(`namespace: ${name}`);
  });

  it('refuses a reader who applies with PERMISSION_DENIED, exit 1', async () => {
    const res = await cli(bobHome, 'namespace', 'apply', file);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('E_PERMISSION_DENIED');
    expect(res.stderr).toContain('bob@example.com may not write on the control plane (ApplyNamespace)');
  });

  it('refuses a caller without a token with UNAUTHENTICATED', async () => {
    const res = await cli(emptyHome, 'namespace', 'list');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('E_UNAUTHENTICATED');
    expect(res.stderr).toContain('no bearer token in the call');
  });

  it('logs that auth is on and never writes a token to its log', () => {
    expect(admin.logs()).toContain('auth is on');
    expect(admin.logs()).not.toContain('auth is off');
    for (const token of tokens) expect(admin.logs()).not.toContain(token.split('.')[2]!);
  });
});
