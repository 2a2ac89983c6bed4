import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { PrismError } from '../../src/errors.js';
import { startAdmin } from '../support/admin-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startPrismServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';
import { eventually } from '../support/eventually.js';

const memstoreNamespace = (name: string) =>
  `namespace: ${name}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`;

describe('a proxy following the control plane', () => {
  it('serves a namespace applied after it started, and stops serving it once deleted', async () => {
    await ensureBuilt();
    const admin = await startAdmin({ extraArgs: ['--heartbeat-interval', '300'] });
    const proxy = await startPrismServer(
      [
        'proxy',
        'serve',
        '--admin',
        admin.endpoint,
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
      ],
      'prism proxy serving',
    );
    const name = uniqueName('live');
    const client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, { namespace: name });
    try {
      // Until its first route table arrives the proxy cannot tell an unknown namespace from one it
      // has not heard of yet, and says UNAVAILABLE (docs/fleet.md); then NOT_FOUND.
      const answers = new Set<string>();
      await eventually('NOT_FOUND for a namespace nobody applied', async () => {
        const err = (await client.get('k').then(
          () => undefined,
          (e: unknown) => e,
        )) as PrismError | undefined;
        answers.add(err?.code ?? 'OK');
        if (err?.code !== 'E_NOT_FOUND') throw new Error(`got ${err?.code ?? 'OK'}`);
      });
      expect([...answers].filter((code) => code !== 'E_NOT_FOUND' && code !== 'E_UNAVAILABLE')).toEqual([]);
      const file = join(mkdtempSync(join(tmpdir(), 'prism-live-')), 'ns.yaml');
      writeFileSync(file, memstoreNamespace(name));
      expect((await runCli(['namespace', 'apply', file, '--admin', admin.endpoint])).code).toBe(0);
      await eventually('the applied namespace being served', () => client.set('k', Buffer.from('v')));
      expect(Buffer.from((await client.get('k')).value).toString()).toBe('v');
      expect((await runCli(['namespace', 'delete', name, '--yes', '--admin', admin.endpoint])).code).toBe(0);
      await eventually('the deleted namespace no longer being served', async () => {
        const err = (await client.get('k').then(
          () => undefined,
          (e: unknown) => e,
        )) as PrismError | undefined;
        if (err?.code !== 'E_NOT_FOUND') throw new Error('still served');
      });
    } finally {
      client.close();
      expect(await proxy.stop()).toBe(0);
      expect(await admin.stop()).toBe(0);
    }
  });
});

describe('draining on SIGTERM', () => {
  it('lets in-flight calls finish, fails later calls only with UNAVAILABLE, and exits 0', async () => {
    await ensureBuilt();
    const name = uniqueName('drain');
    const file = join(mkdtempSync(join(tmpdir(), 'prism-drain-')), 'ns.yaml');
    writeFileSync(file, memstoreNamespace(name));
    const proxy = await startPrismServer(
      ['proxy', 'serve', '--namespaces', file, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
      'prism proxy serving',
    );
    const client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, {
      namespace: name,
      timeoutMs: 5000,
    });
    const outcomes = { ok: 0, unavailable: 0, other: [] as string[] };
    let stopping = false;
    const worker = async (id: number) => {
      for (let i = 0; !stopping || i < 5; i++) {
        try {
          await client.set(`w${id}-${i}`, Buffer.from('x'));
          outcomes.ok++;
        } catch (err) {
          const code = (err as PrismError).code;
          if (code === 'E_UNAVAILABLE' || code === 'E_UNREACHABLE') outcomes.unavailable++;
          else outcomes.other.push(`${code}: ${(err as Error).message}`);
          if (stopping) return;
        }
      }
    };
    try {
      const workers = Array.from({ length: 16 }, (_, id) => worker(id));
      await new Promise((r) => setTimeout(r, 500));
      stopping = true;
      const exit = await proxy.stop('SIGTERM');
      await Promise.all(workers);
      expect(exit).toBe(0);
      expect(outcomes.other).toEqual([]);
      expect(outcomes.ok).toBeGreaterThan(0);
      expect(proxy.logs()).toContain('"msg":"draining"');
    } finally {
      client.close();
    }
  });
});
