import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../../src/admin/catalog.js';
import { openStore } from '../../../src/admin/open-store.js';
import { AdminServer } from '../../../src/admin/server.js';
import { AdminClient } from '../../../src/client/admin-client.js';
import { makeTlsFiles, replaceFile, type TlsFiles } from '../../support/tls-files.js';
import { eventually } from '../../support/eventually.js';

/** GET over HTTPS trusting only `ca`; resolves with the status code. */
function httpsGet(port: number, path: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca: readFileSync(ca), agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end();
  });
}

/** An admin serving TLS from `files`, re-reading them every `refreshMs`. */
async function adminServingFiles(files: TlsFiles, refreshMs: number): Promise<AdminServer> {
  return new AdminServer({
    listen: '127.0.0.1:0',
    metricsListen: '127.0.0.1:0',
    store: await openStore(join(mkdtempSync(join(tmpdir(), 'prism-reload-')), 'admin.db')),
    catalog: defaultCatalog(),
    logger: pino({ level: 'silent' }),
    tls: { certFile: files.server.cert, keyFile: files.server.key, refreshMs },
  });
}

describe('a certificate swapped on disk', () => {
  it('is served to new connections without a restart, and calls on open connections keep working', async () => {
    const files = await makeTlsFiles();
    const server = await adminServingFiles(files, 200);
    await server.start();
    const endpoint = `grpcs://127.0.0.1:${server.grpcPort}`;
    // A client that trusts both CAs keeps one connection open across the swap.
    const bothCas = join(files.dir, 'both-cas.pem');
    writeFileSync(bothCas, readFileSync(files.ca, 'utf8') + readFileSync(files.otherCa, 'utf8'));
    const steady = new AdminClient(endpoint, { tls: { caFile: bothCas } });
    const firstCa = new AdminClient(endpoint, { tls: { caFile: files.ca } });
    try {
      expect((await firstCa.list()).namespaces).toEqual([]);
      expect(await httpsGet(server.httpPort, '/healthz', files.ca)).toBe(200);
      await steady.list();

      let calls = 0;
      const failures: unknown[] = [];
      let swapping = true;
      const traffic = (async () => {
        while (swapping) {
          await steady.list().then(
            () => calls++,
            (err: unknown) => failures.push(err),
          );
        }
      })();

      replaceFile(files.server.key, files.otherServer.key);
      replaceFile(files.server.cert, files.otherServer.cert);

      const secondCa = new AdminClient(endpoint, { tls: { caFile: files.otherCa } });
      try {
        await eventually('a new connection getting the new certificate', () => secondCa.list());
        await eventually('the HTTPS status port serving the new certificate', () =>
          httpsGet(server.httpPort, '/healthz', files.otherCa),
        );
      } finally {
        secondCa.close();
      }
      swapping = false;
      await traffic;
      expect(failures).toEqual([]);
      expect(calls).toBeGreaterThan(0);

      const stale = new AdminClient(endpoint, { tls: { caFile: files.ca } });
      try {
        await expect(stale.list()).rejects.toMatchObject({
          code: 'E_UNREACHABLE',
          message: expect.stringMatching(
            /^the TLS certificate of grpcs:\/\/127\.0\.0\.1:\d+ is not trusted: (unable to (get local issuer|verify the first|get issuer) certificate|self[- ]signed certificate in certificate chain)$/,
          ),
        });
      } finally {
        stale.close();
      }
    } finally {
      steady.close();
      firstCa.close();
      await server.stop();
    }
  });

  it('keeps serving the last good pair while the files do not match', async () => {
    const files = await makeTlsFiles();
    const server = await adminServingFiles(files, 100);
    await server.start();
    try {
      // Only the key is new: the pair does not load, so the old certificate stays in use.
      replaceFile(files.server.key, files.otherServer.key);
      await new Promise((r) => setTimeout(r, 500));
      const client = new AdminClient(`grpcs://127.0.0.1:${server.grpcPort}`, { tls: { caFile: files.ca } });
      try {
        expect((await client.list()).namespaces).toEqual([]);
      } finally {
        client.close();
      }
    } finally {
      await server.stop();
    }
  });
});
