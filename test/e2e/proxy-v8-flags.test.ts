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
/**
 * GLIBC_TUNABLES as the kernel started the process with it (what glibc read). glibc ends each
 * tunable's value with a NUL in place as it parses them, so /proc shows every tunable after the
 * first as a string of its own: they are joined again here.
 */
const tunablesOf = (pid: number) =>
  readFileSync(`/proc/${pid}/environ`, 'utf8')
    .replace(/\0(?=glibc\.)/g, ':')
    .split('\0')
    .find((v) => v.startsWith('GLIBC_TUNABLES='))
    ?.slice('GLIBC_TUNABLES='.length);
/** V8's background threads of a process (Node names them V8Worker): --v8-pool-size sets how many. */
const v8WorkersOf = (pid: number) =>
  readdirSync(`/proc/${pid}/task`).filter(
    (task) => readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim() === 'V8Worker',
  ).length;
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
  it('restarts a single-process proxy in place with the default young generation and V8 pool, and it serves', async () => {
    await ensureBuilt();
    const { name, file } = namespaceFile();
    const proxy = await startPrismServer(proxyServeArgs({ namespaces: file }), 'prism proxy serving');
    try {
      expect(nodeOptionsOf(proxy.pid)).toEqual(['--max-semi-space-size=8', '--v8-pool-size=1']);
      expect(v8WorkersOf(proxy.pid)).toBe(1);
      expect(tunablesOf(proxy.pid)).toBe('glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=268435456');
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
        '--malloc-tunables=glibc.malloc.trim_threshold=1048576',
      ],
      'prism proxy cluster serving',
      { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=4096' },
    );
    try {
      expect(nodeOptionsOf(proxy.pid)).toEqual([]);
      const workers = childrenOf(proxy.pid);
      expect(workers).toHaveLength(2);
      for (const pid of workers) {
        expect(nodeOptionsOf(pid)).toEqual(['--max-semi-space-size=4', '--stack-size=2000']);
        // The person's own tunables stay; the flag's value of one they also set wins.
        expect(tunablesOf(pid)).toBe('glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=1048576');
      }
      expect(await servesCalls(proxy.ready.port as number, name)).toBe('v');
    } finally {
      expect(await proxy.stop()).toBe(0);
    }
  });

  it("leaves V8's and glibc's defaults with empty values: no restart", async () => {
    await ensureBuilt();
    const { file } = namespaceFile();
    const proxy = await startPrismServer(
      [...proxyServeArgs({ namespaces: file }), '--v8-flags=', '--malloc-tunables='],
      'prism proxy serving',
    );
    try {
      expect(nodeOptionsOf(proxy.pid)).toEqual([]);
      expect(tunablesOf(proxy.pid)).toBeUndefined();
      expect(v8WorkersOf(proxy.pid)).toBeGreaterThan(1); // Node's own pool (4)
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

  it('refuses a word that is not a glibc malloc tunable before starting anything', async () => {
    await ensureBuilt();
    const { file } = namespaceFile();
    const run = await runCli([
      ...proxyServeArgs({ namespaces: file }),
      '--malloc-tunables=glibc.malloc.mmap_max=0:glibc.cpu.hwcaps=-AVX2',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      "--malloc-tunables: 'glibc.cpu.hwcaps=-AVX2' is not a glibc malloc tunable (glibc.malloc.<name>=<number>)",
    );
  });
});
