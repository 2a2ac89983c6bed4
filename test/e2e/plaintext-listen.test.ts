/**
 * A server asked to listen off loopback without TLS refuses, before it binds anything, unless
 * --no-tls says plaintext is meant. No test traffic leaves loopback: the refusals bind nothing,
 * and the --no-tls server (bound to 0.0.0.0) is dialled on 127.0.0.1 only.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startPrismServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

const HINT =
  '  hint: serve TLS with --tls-cert and --tls-key (docs/tls.md), or pass --no-tls to serve plaintext on purpose (behind a TLS-terminating proxy or mesh)\n';

function refusal(address: string, flag: string): string {
  return `error E_USAGE: refusing to serve plaintext on ${address} (${flag}), which is not a loopback address: bearer tokens and data would cross the network in clear text\n${HINT}`;
}

describe('a server asked to serve plaintext off loopback', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prism-plaintext-listen-'));
  const namespaces = join(dir, 'ns.yaml');
  // Held on 127.0.0.1: a server that tried to bind 0.0.0.0 on this port would fail with
  // EADDRINUSE instead of the refusal, so the refusal shows nothing was bound.
  let held: Server;
  let port = 0;

  beforeAll(async () => {
    await ensureBuilt();
    writeFileSync(
      namespaces,
      `namespace: ${uniqueName('plain')}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`,
    );
    held = createServer();
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
    port = (held.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => held.close(resolve));
  });

  it('admin serve refuses --listen 0.0.0.0 before it opens its store or binds, and says why and how', async () => {
    const store = join(dir, 'admin.db');
    const res = await runCli(
      ['admin', 'serve', '--no-auth', '--listen', `0.0.0.0:${port}`, '--store', store],
      {
        env: { PRISM_HOME: dir },
      },
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(refusal(`0.0.0.0:${port}`, '--listen'));
    expect(existsSync(store)).toBe(false);
  });

  it('proxy serve refuses a non-loopback --metrics-listen too', async () => {
    const res = await runCli(
      [
        ...['proxy', 'serve', '--namespaces', namespaces, '--listen', `127.0.0.1:0`],
        ...['--metrics-listen', `0.0.0.0:${port}`],
      ],
      { env: { PRISM_HOME: dir } },
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(refusal(`0.0.0.0:${port}`, '--metrics-listen'));
  });

  it('runner serve refuses an IPv6 wildcard', async () => {
    const res = await runCli(
      ['runner', 'serve', 'keyvalue', '--config', namespaces, '--listen', `[::]:${port}`],
      { env: { PRISM_HOME: dir } },
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(refusal(`[::]:${port}`, '--listen'));
  });

  it('--no-tls serves plaintext there on purpose and logs a warning', async () => {
    const admin = await startPrismServer(
      [
        ...['admin', 'serve', '--no-auth', '--listen', '0.0.0.0:0', '--metrics-listen', '127.0.0.1:0'],
        ...['--store', join(dir, 'admin-no-tls.db'), '--no-tls'],
      ],
      'prism admin serving',
      { PRISM_HOME: dir },
    );
    try {
      expect(admin.logs()).toContain(
        '"listen":"0.0.0.0:0","flag":"--listen","msg":"serving PLAINTEXT on a non-loopback address (--no-tls): tokens and data cross the network in clear text"',
      );
      expect(admin.ready.tls).toBe('off');
      const health = await fetch(`http://127.0.0.1:${admin.ready.httpPort as number}/healthz`);
      expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
      const list = await runCli(['namespace', 'list', '--admin', `127.0.0.1:${admin.ready.port as number}`], {
        env: { PRISM_HOME: dir },
      });
      expect(list.code).toBe(0);
    } finally {
      expect(await admin.stop()).toBe(0);
    }
  });

  it('--no-tls and --tls-cert together are a usage error', async () => {
    const res = await runCli(
      [
        'admin',
        'serve',
        '--no-auth',
        '--no-tls',
        '--tls-cert',
        join(dir, 'c.pem'),
        '--tls-key',
        join(dir, 'k.pem'),
      ],
      { env: { PRISM_HOME: dir } },
    );
    expect(res.code).toBe(2);
    // oclif wraps the message to the terminal width, with ' ›' at each line start.
    const message = res.stderr.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ');
    expect(message).toContain(`--tls-cert=${join(dir, 'c.pem')} cannot also be provided when using --no-tls`);
  });
});
