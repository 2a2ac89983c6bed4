import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt, REPO_ROOT, runCli } from '../support/cli.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';
import { makeTlsFiles, replaceFile, type TlsFiles } from '../support/tls-files.js';
import { freePort } from '../support/ports.js';
import { eventually } from '../support/eventually.js';

const memstoreNamespace = (name: string) =>
  `namespace: ${name}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`;

/** GET over HTTPS; resolves with the status code and body. */
function httpsGet(
  port: number,
  path: string,
  tls: { ca: string; cert?: string; key?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        ca: readFileSync(tls.ca),
        ...(tls.cert ? { cert: readFileSync(tls.cert), key: readFileSync(tls.key!) } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('error', reject);
    req.end();
  });
}

let files: TlsFiles;
beforeAll(async () => {
  await ensureBuilt();
  files = await makeTlsFiles();
});

describe('the admin with mTLS, a proxy following it over mTLS and serving TLS, and the CLI', () => {
  let admin: RunningServer;
  let proxy: RunningServer;
  let adminEndpoint: string;
  let proxyEndpoint: string;
  const name = uniqueName('tls');
  const clientCert = () => ['--tls-client-cert', files.client.cert, '--tls-client-key', files.client.key];

  beforeAll(async () => {
    admin = await startPrismServer(
      [
        ...['admin', 'serve', '--no-auth', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
        ...['--tls-cert', files.server.cert, '--tls-key', files.server.key, '--tls-client-ca', files.ca],
        ...['--heartbeat-interval', '300'],
      ],
      'prism admin serving',
    );
    adminEndpoint = `grpcs://127.0.0.1:${admin.ready.port as number}`;
    proxy = await startPrismServer(
      [
        ...['proxy', 'serve', '--admin', adminEndpoint, '--admin-ca-file', files.ca],
        ...['--admin-tls-client-cert', files.client.cert, '--admin-tls-client-key', files.client.key],
        ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
        ...['--tls-cert', files.server.cert, '--tls-key', files.server.key],
      ],
      'prism proxy serving',
    );
    proxyEndpoint = `grpcs://127.0.0.1:${proxy.ready.port as number}`;
  });

  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
    expect(await admin?.stop()).toBe(0);
  });

  it('both servers say they serve TLS', () => {
    expect(admin.ready.tls).toBe('mtls');
    expect(proxy.ready.tls).toBe('tls');
  });

  it('applies a namespace through the CLI with the CA and a client certificate, and serves it over TLS', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'prism-tls-ns-')), 'ns.yaml');
    writeFileSync(file, memstoreNamespace(name));
    const apply = await runCli([
      ...['namespace', 'apply', file, '--admin', adminEndpoint, '--ca-file', files.ca],
      ...clientCert(),
    ]);
    expect(apply.stderr).toBe('');
    expect(apply.code).toBe(0);
    const kv = ['-n', name, '--proxy', proxyEndpoint, '--ca-file', files.ca];
    await eventually('the proxy serving the namespace it got over mTLS', async () => {
      const set = await runCli(['kv', 'set', 'greeting', 'hello', ...kv]);
      if (set.code !== 0) throw new Error(set.stderr);
    });
    const get = await runCli(['kv', 'get', 'greeting', ...kv]);
    expect(get.stdout).toBe('hello');
    expect(get.code).toBe(0);
  });

  it('PRISM_TLS_CA_FILE stands for --ca-file', async () => {
    const list = await runCli(['namespace', 'list', '--admin', adminEndpoint, ...clientCert(), '--json'], {
      env: { PRISM_TLS_CA_FILE: files.ca },
    });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`"${name}"`);
  });

  it('a CLI without the CA fails with an error naming the CA problem and the flag that fixes it', async () => {
    const res = await runCli(['namespace', 'list', '--admin', adminEndpoint, ...clientCert()]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      new RegExp(
        `^error E_UNREACHABLE: the TLS certificate of ${adminEndpoint.replace(/[/.]/g, '\\$&')} is not trusted: self-signed certificate in certificate chain\n` +
          `  hint: pass the CA that signed the server's certificate with --ca-file <ca.pem> \\(or PRISM_TLS_CA_FILE\\)\n$`,
      ),
    );
  });

  it('the admin refuses a client without a certificate, and one whose certificate another CA signed', async () => {
    const none = await runCli(['namespace', 'list', '--admin', adminEndpoint, '--ca-file', files.ca]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain(
      `error E_UNAUTHENTICATED: ${adminEndpoint} refused this client's certificate`,
    );
    expect(none.stderr).toContain('pass --tls-client-cert and --tls-client-key');
    const stranger = await runCli([
      ...['namespace', 'list', '--admin', adminEndpoint, '--ca-file', files.ca],
      ...['--tls-client-cert', files.otherClient.cert, '--tls-client-key', files.otherClient.key],
    ]);
    expect(stranger.code).not.toBe(0);
    expect(stranger.stderr).toContain(
      `error E_UNAUTHENTICATED: ${adminEndpoint} refused this client's certificate`,
    );
  });

  it('a plaintext client of a TLS proxy is told the proxy may serve TLS', async () => {
    const res = await runCli([
      'kv',
      'get',
      'greeting',
      '-n',
      name,
      '--proxy',
      `127.0.0.1:${proxy.ready.port as number}`,
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('closed a plaintext connection: it may serve TLS');
    expect(res.stderr).toContain('dial grpcs://host:port');
  });

  it('serves /readyz and /metrics over HTTPS, the admin only to clients with a certificate', async () => {
    expect(await httpsGet(proxy.ready.httpPort as number, '/readyz', { ca: files.ca })).toEqual({
      status: 200,
      body: 'ready\n',
    });
    const adminHttp = admin.ready.httpPort as number;
    expect(
      await httpsGet(adminHttp, '/healthz', { ca: files.ca, cert: files.client.cert, key: files.client.key }),
    ).toEqual({ status: 200, body: 'ok\n' });
    await expect(httpsGet(adminHttp, '/healthz', { ca: files.ca })).rejects.toThrow();
  });
});

describe("the proxy's client certificate for the admin, rotated on disk", () => {
  it('is used when the proxy reconnects, without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-tls-rotate-'));
    const clientCert = join(dir, 'client.pem');
    const clientKey = join(dir, 'client-key.pem');
    copyFileSync(files.client.cert, clientCert);
    copyFileSync(files.client.key, clientKey);
    const port = await freePort();
    const adminTrusting = (clientCa: string) =>
      startPrismServer(
        [
          ...[
            'admin',
            'serve',
            '--no-auth',
            '--listen',
            `127.0.0.1:${port}`,
            '--metrics-listen',
            '127.0.0.1:0',
          ],
          ...['--tls-cert', files.server.cert, '--tls-key', files.server.key, '--tls-client-ca', clientCa],
          ...['--heartbeat-interval', '300'],
        ],
        'prism admin serving',
      );
    let admin = await adminTrusting(files.ca);
    const proxy = await startPrismServer(
      [
        ...['proxy', 'serve', '--admin', `grpcs://127.0.0.1:${port}`, '--admin-ca-file', files.ca],
        ...['--admin-tls-client-cert', clientCert, '--admin-tls-client-key', clientKey],
        ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
      ],
      'prism proxy serving',
    );
    const adminFlags = ['--admin', `grpcs://127.0.0.1:${port}`, '--ca-file', files.ca];
    const kv = ['--proxy', `127.0.0.1:${proxy.ready.port as number}`];
    const served = (namespace: string, clientPair: string[], what: string) => {
      const file = join(dir, `${namespace}.yaml`);
      writeFileSync(file, memstoreNamespace(namespace));
      return eventually(
        what,
        async () => {
          const apply = await runCli(['namespace', 'apply', file, ...adminFlags, ...clientPair]);
          if (apply.code !== 0) throw new Error(apply.stderr);
          const set = await runCli(['kv', 'set', 'k', 'v', '-n', namespace, ...kv]);
          if (set.code !== 0) throw new Error(set.stderr);
        },
        { timeoutMs: 40_000 },
      );
    };
    try {
      const first = ['--tls-client-cert', files.client.cert, '--tls-client-key', files.client.key];
      await served(uniqueName('tls-before'), first, 'the proxy serving what the first admin assigned');
      // The certificate manager swaps the pair for one from another CA; the admin is then
      // restarted trusting only that CA, so the proxy gets through only with the new pair.
      replaceFile(clientKey, readFileSync(files.otherClient.key, 'utf8'));
      replaceFile(clientCert, readFileSync(files.otherClient.cert, 'utf8'));
      expect(await admin.stop()).toBe(0);
      admin = await adminTrusting(files.otherCa);
      const other = ['--tls-client-cert', files.otherClient.cert, '--tls-client-key', files.otherClient.key];
      await served(
        uniqueName('tls-rotated'),
        other,
        'the proxy re-registered with the rotated certificate and serving the new namespace',
      );
    } catch (err) {
      await proxy.stop();
      await admin.stop();
      throw new Error(`${(err as Error).message}\nproxy:\n${proxy.logs()}`);
    }
    expect(await proxy.stop()).toBe(0);
    expect(await admin.stop()).toBe(0);
  }, 90_000);
});

describe('a standalone runner with mTLS', () => {
  let runner: RunningServer;
  const namespace = uniqueName('tls-runner');

  beforeAll(async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'prism-tls-runner-')), 'ns.yaml');
    writeFileSync(file, memstoreNamespace(namespace));
    runner = await startPrismServer(
      [
        ...['runner', 'serve', 'keyvalue', '--config', file, '--listen', '127.0.0.1:0'],
        ...['--tls-cert', files.server.cert, '--tls-key', files.server.key, '--tls-client-ca', files.ca],
      ],
      'prism runner serving',
    );
  });

  afterAll(async () => {
    expect(await runner?.stop()).toBe(0);
  });

  it('serves a client with a certificate from its client CA', async () => {
    const client = new DataClient(`grpcs://localhost:${runner.ready.port as number}`, {
      namespace,
      tls: { caFile: files.ca, certFile: files.client.cert, keyFile: files.client.key },
    });
    try {
      await client.set('k', Buffer.from('v'));
      expect(Buffer.from((await client.get('k')).value).toString()).toBe('v');
    } finally {
      client.close();
    }
  });

  it('refuses a client certificate another CA signed', async () => {
    const client = new DataClient(`grpcs://127.0.0.1:${runner.ready.port as number}`, {
      namespace,
      tls: { caFile: files.ca, certFile: files.otherClient.cert, keyFile: files.otherClient.key },
    });
    try {
      await expect(client.get('k')).rejects.toMatchObject({
        code: 'E_UNAUTHENTICATED',
        message: expect.stringContaining("refused this client's certificate"),
      });
    } finally {
      client.close();
    }
  });
});

describe('a bearer token bound for plaintext off this machine', () => {
  const connectLog = join(REPO_ROOT, 'test/support/connect-log.mjs');
  const env = { NODE_OPTIONS: `--import ${pathToFileURL(connectLog).href}` };

  it('is refused by the data commands before any socket is opened', async () => {
    const res = await runCli(
      ['kv', 'get', 'k', '-n', 'orders', '--proxy', '192.0.2.1:50090', '--token', 'secret'],
      {
        env,
      },
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      'error E_USAGE: refusing to send a bearer token in clear text to 192.0.2.1:50090: anyone on the network path could read and reuse it\n' +
        "  hint: use TLS (grpcs://192.0.2.1:50090, with --ca-file when a private CA signed the server's certificate), or pass --insecure if this network is trusted\n",
    );
    expect(res.stderr).not.toContain('[connect]');
  });

  it('is refused by the namespace commands (token from PRISM_TOKEN) before any socket is opened', async () => {
    const res = await runCli(['namespace', 'list', '--admin', '192.0.2.1:8981'], {
      env: { ...env, PRISM_TOKEN: 'secret' },
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('refusing to send a bearer token in clear text to 192.0.2.1:8981');
    expect(res.stderr).not.toContain('[connect]');
  });

  it('is sent to a loopback address in plaintext (the connect log shows the dial)', async () => {
    const res = await runCli(
      ['kv', 'get', 'k', '-n', 'orders', '--proxy', '127.0.0.1:9', '--token', 'secret'],
      {
        env,
      },
    );
    expect(res.stderr).toContain('[connect] 127.0.0.1:9');
    expect(res.stderr).toContain('error E_UNREACHABLE: cannot reach the Prism proxy at 127.0.0.1:9');
  });
});
