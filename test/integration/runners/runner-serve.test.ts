import { mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../../src/client/data-client.js';
import { ensureBuilt, runCli } from '../../support/cli.js';
import { startPrismServer, type RunningServer } from '../../support/server-process.js';
import { describeWithService, redisUrl, uniqueName } from '../../support/services.js';

await describeWithService('redis', 'prismctl runner serve (a runner in its own process)', () => {
  let runner: RunningServer;
  let client: DataClient;
  const namespace = uniqueName('runner');

  beforeAll(async () => {
    await ensureBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'prism-runner-'));
    const file = join(dir, 'ns.yaml');
    const backends = join(dir, 'backends.yaml');
    writeFileSync(
      file,
      `namespace: ${namespace}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n`,
    );
    // The test services' Redis, wherever it listens (not the default localhost:6379).
    writeFileSync(backends, `backends:\n  redis: [{ name: test, endpoint: "${redisUrl()}" }]\n`);
    runner = await startPrismServer(
      ['runner', 'serve', 'keyvalue', '--config', file, '--backends', backends, '--listen', '127.0.0.1:0'],
      'prism runner serving',
    );
    client = new DataClient(`127.0.0.1:${runner.ready.port as number}`, { namespace });
  });

  afterAll(async () => {
    client?.close();
    expect(await runner?.stop()).toBe(0);
  });

  it('serves the KeyValue API to a real gRPC client', async () => {
    const value = randomBytes(64);
    await client.set('k1', value, 60);
    const got = await client.get('k1');
    expect(got.found).toBe(true);
    expect(Buffer.from(got.value).equals(value)).toBe(true);
    expect(Number((await client.ttl('k1')).ttlMs)).toBeGreaterThan(50_000);
    expect((await client.get('missing')).found).toBe(false);
  });

  it('answers INVALID_ARGUMENT for an empty key', async () => {
    await expect(client.set('', new Uint8Array([1]))).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
  });
});

it('refuses an auth-enabled namespace unless --no-auth is given', async () => {
  await ensureBuilt();
  const res = await runCli([
    'runner',
    'serve',
    'keyvalue',
    '--config',
    'examples/runners/keyvalue-auth.yaml',
    '--listen',
    '127.0.0.1:0',
  ]);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain('has auth enabled and a standalone runner does not verify tokens');
});
