import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureBuilt, REPO_ROOT } from '../support/cli.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { describeWithService, uniqueName } from '../support/services.js';

/** The wire contract from another language: examples/clients/python with grpcio and stubs from proto/. */
await describeWithService('redis', 'the Python example client', () => {
  let proxy: RunningServer;
  const kvNamespace = uniqueName('py-kv');
  const msgNamespace = uniqueName('py-msg');

  beforeAll(async () => {
    await ensureBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'prism-python-'));
    writeFileSync(
      join(dir, 'kv.yaml'),
      `namespace: ${kvNamespace}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n`,
    );
    writeFileSync(
      join(dir, 'msg.yaml'),
      `namespace: ${msgNamespace}\nteam: platform\npatterns:\n  - name: events\n    type: producer\n    slots:\n      sink: { backend: memstore }\n    settings: { topic: greetings }\n  - name: worker\n    type: consumer\n    slots:\n      source: { backend: memstore }\n    settings: { topic: greetings, consumer_group: python }\n`,
    );
    proxy = await startPrismServer(
      ['proxy', 'serve', '--namespaces', dir, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
      'prism proxy serving',
    );
  });

  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
  });

  it('sets and gets a key and publishes and consumes a message through the proxy', async () => {
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, 'examples/clients/python/run.sh'),
      [`127.0.0.1:${proxy.ready.port as number}`, kvNamespace, msgNamespace],
      { timeout: 300_000 },
    );
    expect(stdout).toContain('kv ok: python/');
    expect(stdout).toContain('publish/consume ok: ');
  }, 320_000);
});
