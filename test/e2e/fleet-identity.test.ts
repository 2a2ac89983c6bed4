/**
 * A forwarded call keeps the caller's identity (docs/fleet.md, Routing): two real proxies serving
 * mTLS forward calls to each other over mTLS with the caller's metadata unchanged, so the owner
 * authenticates and authorizes the caller itself — alice's token is served, a call without a
 * token is UNAUTHENTICATED and one in a namespace of another team PERMISSION_DENIED, each
 * decided by the owner and passed back unchanged by the proxy that forwarded it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
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
import { eventually } from '../support/eventually.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';
import { makeTlsFiles, type TlsFiles } from '../support/tls-files.js';

describe('a fleet forwarding calls over mTLS with the caller’s identity', () => {
  const idp = new DevIdp();
  const prefix = uniqueName('ident');
  const granted = Array.from({ length: 6 }, (_, i) => `${prefix}-c${i}`);
  const denied = `${prefix}-analytics`;
  const proxies: Record<string, RunningServer> = {};
  const endpoints: Record<string, string> = {};
  const owners = new Map<string, string>();
  let admin: RunningAdmin;
  let files: TlsFiles;
  let token: string;

  const other = (name: string) => (owners.get(name) === 'ident-a' ? 'ident-b' : 'ident-a');
  const client = (proxy: string, namespace: string, withToken = true) =>
    new DataClient(endpoints[proxy]!, {
      namespace,
      ...(withToken ? { token } : {}),
      tls: { caFile: files.ca, certFile: files.client.cert, keyFile: files.client.key },
      timeoutMs: 5000,
    });
  const forwardedCount = async (proxy: string, namespace: string, code: number) => {
    const port = proxies[proxy]!.ready.httpPort as number;
    const metrics = await new Promise<string>((resolve, reject) =>
      httpsGet(
        `https://127.0.0.1:${port}/metrics`,
        {
          ca: readFileSync(files.ca),
          cert: readFileSync(files.client.cert),
          key: readFileSync(files.client.key),
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(body));
        },
      ).on('error', reject),
    );
    const line = metrics
      .split('\n')
      .find((l) => l.startsWith(`prism_proxy_forwarded_total{namespace="${namespace}",code="${code}"}`));
    return line ? Number(line.split(' ')[1]) : 0;
  };

  beforeAll(async () => {
    await ensureBuilt();
    files = await makeTlsFiles();
    const issuer = await idp.start();
    const home = mkdtempSync(join(tmpdir(), 'prism-ident-home-'));
    token = (
      await deviceLogin(
        { issuer, clientId: 'prismctl', scopes: DEFAULT_SCOPES },
        new TokenCache(home),
        (p) => void approveDeviceCode(p.verificationUri, p.userCode, 'alice@example.com'),
        { intervalSeconds: 0.05 },
      )
    ).accessToken;
    const dir = mkdtempSync(join(tmpdir(), 'prism-ident-ns-'));
    const ns = (name: string, team: string) =>
      `namespace: ${name}\nteam: ${team}\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\nauth:\n  enabled: true\n  issuer: ${issuer}\n  audiences: [${DEV_AUDIENCE}]\n`;
    for (const name of granted) writeFileSync(join(dir, `${name}.yaml`), ns(name, 'commerce'));
    writeFileSync(join(dir, `${denied}.yaml`), ns(denied, 'analytics'));
    admin = await startAdmin({ extraArgs: ['--heartbeat-interval', '200'] });
    const applied = await runCli(['namespace', 'apply', dir, '--admin', admin.endpoint]);
    expect(applied.code, applied.stderr).toBe(0);
    await Promise.all(
      ['ident-a', 'ident-b'].map(async (id) => {
        proxies[id] = await startPrismServer(
          [
            ...['proxy', 'serve', '--admin', admin.endpoint, '--proxy-id', id],
            ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
            ...['--tls-cert', files.server.cert, '--tls-key', files.server.key, '--tls-client-ca', files.ca],
            ...['--peer-ca-file', files.ca],
            ...['--peer-tls-client-cert', files.client.cert, '--peer-tls-client-key', files.client.key],
          ],
          'prism proxy serving',
        );
        endpoints[id] = `127.0.0.1:${proxies[id].ready.port as number}`;
      }),
    );
    await eventually('both proxies owning namespaces', async () => {
      const list = await runCli(['namespace', 'list', '--admin', admin.endpoint, '--json']);
      for (const row of JSON.parse(list.stdout) as Array<{ name: string; ownerProxy: string }>)
        owners.set(row.name, row.ownerProxy);
      const ours = granted.map((n) => owners.get(n));
      if (!ours.includes('ident-a') || !ours.includes('ident-b') || !owners.get(denied))
        throw new Error(JSON.stringify(ours));
      for (const name of granted) await client(other(name), name).exists('ready');
    });
  }, 90_000);

  afterAll(async () => {
    for (const proxy of Object.values(proxies)) expect(await proxy.stop()).toBe(0);
    expect(await admin?.stop()).toBe(0);
    await idp.stop();
  });

  it('serves alice through the proxy that does not own the namespace, over mTLS to the owner', async () => {
    for (const name of granted) {
      await client(other(name), name).set('greeting', Buffer.from(`hello ${name}`));
      const got = await client(owners.get(name)!, name).get('greeting');
      expect(Buffer.from(got.value).toString()).toBe(`hello ${name}`);
      expect(await forwardedCount(other(name), name, 0)).toBeGreaterThan(0);
    }
  });

  it('passes the owner’s UNAUTHENTICATED back for a call without a token', async () => {
    const name = granted[0]!;
    const before = await forwardedCount(other(name), name, 16);
    await expect(client(other(name), name, false).get('greeting')).rejects.toMatchObject({
      code: 'E_UNAUTHENTICATED',
    });
    expect(await forwardedCount(other(name), name, 16)).toBe(before + 1);
  });

  it('passes the owner’s PERMISSION_DENIED back for a namespace of another team', async () => {
    const before = await forwardedCount(other(denied), denied, 7);
    await expect(client(other(denied), denied).get('greeting')).rejects.toMatchObject({
      code: 'E_PERMISSION_DENIED',
    });
    expect(await forwardedCount(other(denied), denied, 7)).toBe(before + 1);
  });
});
