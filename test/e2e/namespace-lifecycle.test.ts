import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { connectPostgres, describeWithService, postgresUrl, uniqueName } from '../support/services.js';

/**
 * The control-plane lifecycle of issue #4, end to end against a real `prismctl admin serve`:
 * apply → apply again (unchanged) → diff (0) → edit → diff (1) → apply (updated, version+1) →
 * export → apply the export (unchanged) → delete, once per store.
 */
function lifecycle(
  storeName: string,
  store: () => Promise<{ spec?: string; args?: string[]; cleanup?: () => Promise<void> }>,
) {
  let admin: RunningAdmin;
  let cleanup: (() => Promise<void>) | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'prism-e2e-'));
  const name = uniqueName('e2e');
  const file = join(dir, `${name}.yaml`);
  const cli = (...args: string[]) => runCli([...args, '--admin', admin.endpoint]);

  beforeAll(async () => {
    await ensureBuilt();
    const s = await store();
    cleanup = s.cleanup;
    admin = await startAdmin({ store: s.spec, extraArgs: s.args });
    writeFileSync(
      file,
      `namespace: ${name}\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n    settings: { default_ttl: 15m }\n`,
    );
  }, 60_000);

  afterAll(async () => {
    expect(await admin?.stop()).toBe(0);
    await cleanup?.();
  });

  it(`walks the whole lifecycle on ${storeName}`, async () => {
    const created = await cli('namespace', 'apply', file, '--detailed-exitcode');
    expect(created.stderr).toBe('');
    expect(created.code).toBe(2);
    expect(created.stdout).toMatch(new RegExp(`^${name}: created — version 1, partition \\d+`));
    expect(created.stdout).toContain('cache.store → redis redis://localhost:6379');

    const again = await cli('namespace', 'apply', file, '--detailed-exitcode');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`${name}: unchanged — version 1`);

    expect((await cli('namespace', 'diff', file)).code).toBe(0);

    writeFileSync(file, readFileSync(file, 'utf8').replace('default_ttl: 15m', 'default_ttl: 30m'));
    const diff = await cli('namespace', 'diff', file);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain('-      default_ttl: 15m');
    expect(diff.stdout).toContain('+      default_ttl: 30m');

    const dry = await cli('namespace', 'apply', file, '--dry-run', '--json');
    expect(JSON.parse(dry.stdout)[0]).toMatchObject({ outcome: 'updated', version: 2, dryRun: true });
    expect((await cli('namespace', 'diff', file)).code).toBe(1);

    const updated = await cli('namespace', 'apply', file, '--json');
    expect(updated.code).toBe(0);
    expect(JSON.parse(updated.stdout)[0]).toMatchObject({ namespace: name, outcome: 'updated', version: 2 });

    const exported = await cli('namespace', 'export', name);
    expect(exported.code).toBe(0);
    const exportFile = join(dir, 'exported.yaml');
    writeFileSync(exportFile, exported.stdout);
    const reapplied = await cli('namespace', 'apply', exportFile, '--json');
    expect(JSON.parse(reapplied.stdout)[0]).toMatchObject({ outcome: 'unchanged', version: 2 });

    const list = await cli('namespace', 'list', '--json');
    expect(JSON.parse(list.stdout)).toContainEqual(
      expect.objectContaining({ name, version: 2, patterns: ['keyvalue'] }),
    );

    const history = await cli('namespace', 'history', name, '--json');
    expect(JSON.parse(history.stdout).map((e: { action: string }) => e.action)).toEqual(['create', 'update']);

    const deleted = await cli('namespace', 'delete', name, '--yes');
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain(`${name}: deleted (was version 2)`);
    const gone = await cli('namespace', 'get', name);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`namespace '${name}' does not exist`);
  });

  it(`refuses invalid files before sending anything, on ${storeName}`, async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      `namespace: ${name}-bad\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: kafka }\n`,
    );
    const res = await cli('namespace', 'apply', bad);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('bad.yaml:7:25: error E_BACKEND_CAPABILITY');
    expect((await cli('namespace', 'get', `${name}-bad`)).code).toBe(1);
  });
}

describe('namespace lifecycle on SQLite', () => {
  lifecycle('SQLite', async () => ({}));
});

await describeWithService('postgres', 'namespace lifecycle on PostgreSQL', () => {
  const schema = uniqueName('e2e_schema').replace(/-/g, '_');
  lifecycle('PostgreSQL', async () => ({
    spec: postgresUrl(),
    args: ['--store-schema', schema],
    cleanup: async () => {
      const client = await connectPostgres();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  }));
});

describe('talking to an admin that is not there', () => {
  it('names the endpoint and how to start one, exit 2', async () => {
    await ensureBuilt();
    const res = await runCli(['namespace', 'list', '--admin', '127.0.0.1:1']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('cannot reach the Prism admin at 127.0.0.1:1');
    expect(res.stderr).toContain('prismctl admin serve');
  });
});
