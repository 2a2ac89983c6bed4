import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { deviceLogin } from '../../src/auth/login.js';
import { DEFAULT_SCOPES } from '../../src/auth/oidc-config.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { DataClient } from '../../src/client/data-client.js';
import { approveDeviceCode } from '../integration/auth/play-person.js';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

/**
 * Proxies registering with an auth-enabled admin: the admin grants the proxy action to the
 * commerce group. A proxy whose token file holds alice's token (commerce) registers and serves
 * the namespaces it is assigned, and picks up a rewritten token file on its next call; a proxy
 * without a token is refused with a clear log line and exits; a loose token file is refused.
 */
describe('a proxy registering with an authenticated control plane', () => {
  const idp = new DevIdp();
  const devHome = mkdtempSync(join(tmpdir(), 'prism-proxy-token-dev-'));
  const dir = mkdtempSync(join(tmpdir(), 'prism-proxy-token-'));
  const tokenFile = join(dir, 'admin-token');
  const name = uniqueName('ptok');
  const noToken = { PRISM_ADMIN_TOKEN: '', PRISM_VAULT_JWT: '' };
  const tokens: Record<string, string> = {};
  let admin: RunningAdmin;
  let proxy: RunningServer | undefined;

  const login = async (person: string, home = mkdtempSync(join(tmpdir(), 'prism-proxy-token-home-'))) => {
    const cached = await deviceLogin(
      { issuer: idp.issuer, clientId: 'prismctl', scopes: DEFAULT_SCOPES },
      new TokenCache(home),
      (p) => void approveDeviceCode(p.verificationUri, p.userCode, person),
      { intervalSeconds: 0.05 },
    );
    tokens[person] = cached.accessToken;
  };
  const proxyArgs = (...extra: string[]) => [
    'proxy',
    'serve',
    ...['--admin', admin.endpoint, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
    ...extra,
  ];

  beforeAll(async () => {
    await ensureBuilt();
    await idp.start();
    await login('dev@local.prism', devHome);
    await login('alice@example.com');
    await login('bob@example.com');
    admin = await startAdmin({
      extraArgs: [
        ...['--auth-issuer', idp.issuer, '--auth-audience', DEV_AUDIENCE],
        ...['--auth-admin-group', 'prism-admins', '--auth-proxy-group', 'commerce'],
        ...['--heartbeat-interval', '200'],
      ],
    });
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      `namespace: ${name}\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`,
    );
    const applied = await runCli(['namespace', 'apply', file, '--admin', admin.endpoint], {
      env: { PRISM_HOME: devHome, PRISM_TOKEN: '' },
    });
    expect(applied.code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    if (proxy) expect(await proxy.stop()).toBe(0);
    expect(await admin?.stop()).toBe(0);
    await idp.stop();
  });

  it('registers a proxy whose token is in a proxy group, and serves its namespaces', async () => {
    writeFileSync(tokenFile, tokens['alice@example.com']!, { mode: 0o600 });
    proxy = await startPrismServer(
      proxyArgs('--admin-token-file', tokenFile),
      'prism proxy serving',
      noToken,
    );
    const client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, { namespace: name });
    try {
      let served = false;
      for (let i = 0; i < 100 && !served; i++) {
        served = await client.set('greeting', Buffer.from('hello')).then(
          () => true,
          () => new Promise<boolean>((r) => setTimeout(() => r(false), 100)),
        );
      }
      expect(served).toBe(true);
      expect(Buffer.from((await client.get('greeting')).value).toString()).toBe('hello');
    } finally {
      client.close();
    }
    expect(proxy.logs()).toContain(`"tokenSource":"${tokenFile}"`);
  }, 30_000);

  it('reads the token file again on its next call, so a rotated token takes effect', async () => {
    writeFileSync(tokenFile, tokens['bob@example.com']!, { mode: 0o600 });
    const refused = 'the admin refused this proxy’s token';
    for (let i = 0; i < 50 && !proxy!.logs().includes(refused); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(proxy!.logs()).toContain(refused);
    expect(proxy!.logs()).toContain('bob@example.com may not proxy on the control plane (Heartbeat)');
    writeFileSync(tokenFile, tokens['alice@example.com']!, { mode: 0o600 });
  }, 15_000);

  it('refuses a proxy without a token, with a clear log line, and the proxy exits', async () => {
    const res = await runCli(proxyArgs(), { env: noToken });
    expect(res.code).not.toBe(0);
    expect(res.stdout).toContain('"msg":"the admin refused to register this proxy"');
    expect(res.stdout).toContain('"tokenSource":"none"');
    expect(res.stderr).toContain('E_UNAUTHENTICATED');
    expect(res.stderr).toContain('refused to register this proxy: no bearer token in the call');
    expect(res.stderr).toContain('--admin-token-file');
  });

  it('refuses a token file that others may read, before starting', async () => {
    const loose = join(dir, 'loose-token');
    writeFileSync(loose, tokens['alice@example.com']!);
    chmodSync(loose, 0o644);
    const res = await runCli(proxyArgs('--admin-token-file', loose), { env: noToken });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`the admin token file ${loose} is readable by others (mode 0644)`);
    expect(res.stderr).toContain(`chmod 600 ${loose}`);
  });

  it('never writes a token to the proxy’s or the admin’s log', () => {
    for (const token of Object.values(tokens)) {
      const signature = token.split('.')[2]!;
      expect(proxy!.logs()).not.toContain(signature);
      expect(admin.logs()).not.toContain(signature);
    }
  });
});
