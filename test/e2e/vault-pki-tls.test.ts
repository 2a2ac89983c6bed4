/**
 * `proxy serve --tls-from-vault <mount>/issue/<role>` against the real OpenBao: the proxy serves a
 * certificate its PKI engine issued, and issues a new one at two thirds of its 20 s lifetime;
 * new connections get the new certificate while calls keep succeeding.
 */
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { describeWithService, uniqueName, vaultAddr, vaultRootToken } from '../support/services.js';

async function vault(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${vaultAddr()}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': vaultRootToken(), 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** The serial number of the certificate a new TLS connection to 127.0.0.1:`port` is served. */
function servedSerial(port: number, ca: string, alpn = 'h2'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: [alpn] },
      () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.destroy();
        resolve(serial);
      },
    );
    socket.on('error', reject);
  });
}

await describeWithService('vault', 'proxy serve --tls-from-vault', () => {
  const mount = uniqueName('pki');
  const namespace = uniqueName('vault-tls');
  const dir = mkdtempSync(join(tmpdir(), 'prism-vault-tls-'));
  const caFile = join(dir, 'root.pem');
  let ca = '';
  let proxy: RunningServer;

  beforeAll(async () => {
    await ensureBuilt();
    await vault('POST', `sys/mounts/${mount}`, { type: 'pki', config: { max_lease_ttl: '1h' } });
    const root = (await vault('POST', `${mount}/root/generate/internal`, {
      common_name: `Prism test root ${mount}`,
      ttl: '1h',
    })) as { data: { certificate: string } };
    ca = `${root.data.certificate}\n`;
    writeFileSync(caFile, ca);
    await vault('POST', `${mount}/roles/proxy`, {
      allowed_domains: 'localhost',
      allow_bare_domains: true,
      allow_localhost: true,
      allow_ip_sans: true,
      key_type: 'ec',
      key_bits: 256,
      ttl: '20s',
      max_ttl: '1m',
    });
    const ns = join(dir, 'ns.yaml');
    writeFileSync(
      ns,
      `namespace: ${namespace}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`,
    );
    proxy = await startPrismServer(
      [
        ...[
          'proxy',
          'serve',
          '--namespaces',
          ns,
          '--listen',
          '127.0.0.1:0',
          '--metrics-listen',
          '127.0.0.1:0',
        ],
        ...['--tls-from-vault', `${mount}/issue/proxy`],
      ],
      'prism proxy serving',
      { VAULT_ADDR: vaultAddr(), VAULT_TOKEN: vaultRootToken() },
    );
  }, 60_000);

  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
    await vault('DELETE', `sys/mounts/${mount}`).catch(() => undefined);
  });

  it('serves a certificate chaining to the Vault CA, and a new one after renewal, with no failed call', async () => {
    expect(proxy.ready.tls).toBe('tls');
    const files = join(proxy.prismHome, 'tls', `proxy-${proxy.pid}`);
    expect(statSync(files).mode & 0o777).toBe(0o700);
    expect(statSync(join(files, 'key.pem')).mode & 0o777).toBe(0o600);
    const port = proxy.ready.port as number;
    const first = await servedSerial(port, ca);
    // One client stays connected through the renewal; others connect anew for every call.
    const steady = new DataClient(`grpcs://localhost:${port}`, { namespace, tls: { caFile } });
    const serials = new Set([first]);
    let calls = 0;
    try {
      await steady.set('k', Buffer.from('v'));
      const deadline = Date.now() + 25_000;
      while (Date.now() < deadline && serials.size < 2) {
        const fresh = new DataClient(`grpcs://127.0.0.1:${port}`, { namespace, tls: { caFile } });
        try {
          expect(Buffer.from((await fresh.get('k')).value).toString()).toBe('v');
        } finally {
          fresh.close();
        }
        expect(Buffer.from((await steady.get('k')).value).toString()).toBe('v');
        calls += 2;
        serials.add(await servedSerial(port, ca));
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      steady.close();
    }
    expect(serials.size).toBe(2);
    expect(calls).toBeGreaterThan(10);
    expect(proxy.logs()).toContain('"msg":"TLS certificate issued by Vault"');
    expect(proxy.logs()).not.toContain('renewing the TLS certificate from Vault failed');
  }, 40_000);

  it('admin serve takes the same flag: its gRPC and HTTP ports serve the Vault-issued certificate', async () => {
    const admin = await startPrismServer(
      [
        ...['admin', 'serve', '--no-auth', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
        ...['--store', join(dir, 'admin.db'), '--tls-from-vault', `${mount}/issue/proxy`],
      ],
      'prism admin serving',
      { VAULT_ADDR: vaultAddr(), VAULT_TOKEN: vaultRootToken() },
    );
    try {
      expect(admin.ready.tls).toBe('tls');
      expect(await servedSerial(admin.ready.port as number, ca)).toMatch(/^[0-9A-F]+$/);
      expect(await servedSerial(admin.ready.httpPort as number, ca, 'http/1.1')).toMatch(/^[0-9A-F]+$/);
    } finally {
      expect(await admin.stop()).toBe(0);
    }
  });

  it('refuses to start without VAULT_TOKEN, naming what is missing', async () => {
    const res = await runCli(['admin', 'serve', '--no-auth', '--tls-from-vault', `${mount}/issue/proxy`], {
      env: { VAULT_ADDR: vaultAddr(), VAULT_TOKEN: '', PRISM_HOME: dir },
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('error E_USAGE: --tls-from-vault needs VAULT_ADDR and VAULT_TOKEN\n');
  });
});
