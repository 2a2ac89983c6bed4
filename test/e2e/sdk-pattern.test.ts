/**
 * A pattern from outside prismctl, built only with prismctl/sdk (examples/patterns/rate-limited-kv),
 * through the real proxy: `namespace validate` knows its type only with --pattern-module, the
 * proxy launches its runner (isolation: pattern is its default) over a real Redis, the runner's
 * quota answers RESOURCE_EXHAUSTED through the proxy, and survives a SIGKILL of the runner.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { PrismError } from '../../src/errors.js';
import type { RunnerProcessInfo } from '../../src/proxy/launcher/runner-process.js';
import { startAdmin } from '../support/admin-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { describeWithServices, redisUrl, uniqueName } from '../support/services.js';
import { eventually } from '../support/eventually.js';

const MODULE = resolve('examples/patterns/rate-limited-kv/index.ts');
const dir = mkdtempSync(join(tmpdir(), 'prism-sdk-pattern-'));
const limited = uniqueName('limited');
let proxy: RunningServer | undefined;
let client: DataClient;
let status: string;

const nsYaml = (patternLine: string) =>
  `namespace: ${limited}\nteam: platform\npatterns:\n  - ${patternLine}\n`;
const PATTERN =
  '{ name: quota, type: rate-limited-kv, slots: { store: { backend: redis } }, settings: { custom: { writes_per_window: "3", window: 1h } } }';

async function runners(): Promise<RunnerProcessInfo[]> {
  const out = await runCli(['runner', 'list', '--proxy-status', status, '--json']);
  return (JSON.parse(out.stdout) as { runners: RunnerProcessInfo[] }).runners;
}

await describeWithServices(['redis'], 'a pattern module built with the SDK, served by the proxy', () => {
  beforeAll(async () => {
    await ensureBuilt();
    mkdirSync(join(dir, 'ns'));
    writeFileSync(
      join(dir, 'backends.yaml'),
      `backends:\n  redis: [{ name: test, endpoint: "${redisUrl()}" }]\n`,
    );
    writeFileSync(join(dir, 'ns', 'limited.yaml'), nsYaml(PATTERN));
    proxy = await startProxy({ namespaces: join(dir, 'ns'), backends: join(dir, 'backends.yaml') }, [
      '--pattern-module',
      MODULE,
    ]);
    client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, {
      namespace: limited,
      timeoutMs: 10_000,
    });
    status = `127.0.0.1:${proxy.ready.httpPort as number}`;
  });

  afterAll(async () => {
    client?.close();
    if (proxy) await proxy.stop();
  });

  it('refuses the type without its module, and accepts it with --pattern-module', async () => {
    const file = join(dir, 'ns', 'limited.yaml');
    const without = await runCli(['namespace', 'validate', file, '--json']);
    expect(without.code).toBe(1);
    expect(JSON.parse(without.stdout).diagnostics.map((d: { rule: string }) => d.rule)).toEqual([
      'E_PATTERN_TYPE',
    ]);
    const withModule = await runCli(['namespace', 'validate', file, '--pattern-module', MODULE, '--json']);
    expect([withModule.code, JSON.parse(withModule.stdout).valid]).toEqual([0, true]);
  });

  it("checks the module's settings and refuses isolation: none", async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      nsYaml(
        '{ name: quota, type: rate-limited-kv, isolation: none, slots: { store: { backend: redis } }, settings: { custom: { writes_per_window: "0", burst: "2" } } }',
      ),
    );
    const out = await runCli(['namespace', 'validate', file, '--pattern-module', MODULE, '--json']);
    expect(out.code).toBe(1);
    const diagnostics = JSON.parse(out.stdout).diagnostics as Array<{ rule: string; message: string }>;
    // In the order of their position in the file.
    expect(diagnostics.map((d) => [d.rule, d.message])).toEqual([
      [
        'E_ISOLATION_EXTERNAL',
        "pattern 'quota' (rate-limited-kv) comes from a pattern module, whose runners never run inside the proxy",
      ],
      [
        'E_SETTING_CUSTOM',
        'setting \'writes_per_window\' of rate-limited-kv is "0", which does not match [1-9][0-9]*',
      ],
      ['E_SETTING_CUSTOM', "rate-limited-kv has no setting 'burst'"],
    ]);
  });

  it('is applied through an admin that loaded the module, and refused by one that did not', async () => {
    const file = join(dir, 'ns', 'limited.yaml');
    const apply = (endpoint: string) =>
      runCli(['namespace', 'apply', file, '--admin', endpoint, '--pattern-module', MODULE, '--json']);
    const knowing = await startAdmin({
      extraArgs: ['--pattern-module', MODULE, '--backends', join(dir, 'backends.yaml')],
    });
    const unaware = await startAdmin();
    try {
      const applied = await apply(knowing.endpoint);
      expect(applied.code).toBe(0);
      const [result] = JSON.parse(applied.stdout) as Array<{ outcome: string; slots: unknown[] }>;
      expect([result!.outcome, result!.slots]).toEqual([
        'created',
        [
          {
            pattern: 'quota',
            type: 'rate-limited-kv',
            slot: 'store',
            backend: 'redis',
            endpoint: redisUrl(),
            credentialRef: '',
          },
        ],
      ]);
      const refused = await apply(unaware.endpoint);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("unknown pattern type 'rate-limited-kv'");
    } finally {
      await knowing.stop();
      await unaware.stop();
    }
  });

  it('runs the module in a launched runner process and serves the KeyValue API through the proxy', async () => {
    const listed = await runners();
    expect(listed.map((r) => [r.namespace, r.patterns, r.isolation, r.state])).toEqual([
      [limited, ['quota'], 'pattern', 'serving'],
    ]);
    await client.set('a', Buffer.from('1'));
    await client.set('b', Buffer.from('2'));
    expect(Buffer.from((await client.get('a')).value).toString()).toBe('1');
  });

  it('answers RESOURCE_EXHAUSTED past the quota, also after the runner process was killed', async () => {
    await client.set('c', Buffer.from('3'));
    const refused = (await client.set('d', Buffer.from('4')).catch((e: unknown) => e)) as PrismError;
    expect([refused.code, refused.message]).toEqual([
      'E_RESOURCE_EXHAUSTED',
      `${limited}/quota: 3 writes per 1h used up`,
    ]);
    const [before] = await runners();
    process.kill(before!.pid!, 'SIGKILL');
    await eventually(
      'the launcher restarted the runner',
      async () => {
        const [now] = await runners();
        if (now?.state !== 'serving' || now.pid === before!.pid) throw new Error(`state ${now?.state}`);
      },
      { timeoutMs: 20_000 },
    );
    const again = (await client.set('e', Buffer.from('5')).catch((e: unknown) => e)) as PrismError;
    expect(again.code).toBe('E_RESOURCE_EXHAUSTED');
    // Reads are not counted.
    expect(Buffer.from((await client.get('c')).value).toString()).toBe('3');
  });
});
