import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startPrismServer, proxyServeArgs } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

/** A namespace file with one memstore keyvalue pattern. */
function namespaceFile(): { name: string; file: string } {
  const name = uniqueName('v8');
  const file = join(mkdtempSync(join(tmpdir(), 'prism-v8-')), 'ns.yaml');
  writeFileSync(
    file,
    `namespace: ${name}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`,
  );
  return { name, file };
}

/** The command line a process runs with, read from /proc: what the kernel started, not what it says. */
const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
const nodeOptionsOf = (pid: number) => {
  const argv = commandLine(pid);
  return argv.slice(
    1,
    argv.findIndex((a) => a.endsWith('bin/run.js')),
  );
};
const childrenOf = (pid: number) =>
  readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number),
  );

async function servesCalls(port: number, namespace: string): Promise<string> {
  const client = new DataClient(`127.0.0.1:${port}`, { namespace });
  try {
    await client.set('k', Buffer.from('v'));
    return Buffer.from((await client.get('k')).value).toString();
  } finally {
    client.close();
  }
}

describe('proxy serve --v8-flags', () => {
  it('restarts a single-process proxy in place with the default young-generation size, and it serves', async () => {
    await ensureBuilt();
    const { name, file } = namespaceFile();
    const proxy = await startPrismServer(proxyServeArgs({ namespaces: file }), 'prism proxy serving');
    try {
      expect(nodeOptionsOf(proxy.pid)).toEqual(['--max-semi-space-size=8']);
      expect(proxy.ready.pid).toBe(proxy.pid);
      expect(await servesCalls(proxy.ready.port as number, name)).toBe('v');
    } finally {
      expect(await proxy.stop()).toBe(0);
    }
  });

  it('starts every cluster worker with the flags given, and the primary without them', async () => {
    await ensureBuilt();
    const { name, file } = namespaceFile();
    const proxy = await startPrismServer(
      [
        ...proxyServeArgs({ namespaces: file }),
        '--workers',
        '2',
        '--v8-flags=--max-semi-space-size=4 --stack-size=2000',
      ],
      'prism proxy cluster serving',
    );
    try {
      expect(nodeOptionsOf(proxy.pid)).toEqual([]);
      const workers = childrenOf(proxy.pid);
      expect(workers).toHaveLength(2);
      for (const pid of workers)
        expect(nodeOptionsOf(pid)).toEqual(['--max-semi-space-size=4', '--stack-size=2000']);
      expect(await servesCalls(proxy.ready.port as number, name)).toBe('v');
    } finally {
      expect(await proxy.stop()).toBe(0);
    }
  });

  it("leaves V8's defaults with an empty value: no restart", async () => {
    await ensureBuilt();
    const { file } = namespaceFile();
    const proxy = await startPrismServer(
      [...proxyServeArgs({ namespaces: file }), '--v8-flags='],
      'prism proxy serving',
    );
    try {
      expect(nodeOptionsOf(proxy.pid)).toEqual([]);
    } finally {
      expect(await proxy.stop()).toBe(0);
    }
  });

  it('refuses a word that is not a V8 option before starting anything', async () => {
    await ensureBuilt();
    const { file } = namespaceFile();
    const run = await runCli([
      ...proxyServeArgs({ namespaces: file }),
      '--v8-flags=--max-semi-space-size=8 young',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--v8-flags: 'young' is not a V8 option (--name or --name=value)");
  });
});
