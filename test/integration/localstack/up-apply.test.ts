/** The namespace step of `dev up` on Docker (src/localstack/up-apply.ts) against a real admin. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../../src/client/admin-client.js';
import { loadNamespaceFiles, selectEmbedded } from '../../../src/localstack/namespaces.js';
import { applyNamespaces, namespaceDigest } from '../../../src/localstack/up-apply.js';
import { startAdmin, type RunningAdmin } from '../../support/admin-process.js';
import { ensureBuilt } from '../../support/cli.js';
import { uniqueName } from '../../support/services.js';

const namespaceYaml = (name: string) =>
  `namespace: ${name}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`;

describe('namespaceDigest', () => {
  it('is the same for the same files and changes when a file’s content changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-digest-'));
    const file = join(dir, 'ns.yaml');
    writeFileSync(file, namespaceYaml('orders'));
    const first = await namespaceDigest([file]);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(await namespaceDigest([file])).toBe(first);
    writeFileSync(file, namespaceYaml('billing'));
    expect(await namespaceDigest([file])).not.toBe(first);
  });
});

describe('applyNamespaces', () => {
  let admin: RunningAdmin;

  beforeAll(async () => {
    await ensureBuilt();
    admin = await startAdmin();
  });

  afterAll(async () => {
    await admin?.stop();
  });

  it('applies every runnable namespace through the admin, in order, reporting each', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-apply-'));
    const names = [uniqueName('apply-a'), uniqueName('apply-b')];
    writeFileSync(join(dir, 'a.yaml'), namespaceYaml(names[0]!));
    writeFileSync(join(dir, 'b.yaml'), namespaceYaml(names[1]!));
    const selection = selectEmbedded(await loadNamespaceFiles([join(dir, 'a.yaml'), join(dir, 'b.yaml')]));
    const events: string[] = [];
    const applied = await applyNamespaces(admin.endpoint, selection, {
      status: (component, message) => events.push(`${component}: ${message}`),
    });
    expect(applied).toEqual(names);
    expect(events).toEqual([`admin: applying ${names[0]}`, `admin: applying ${names[1]}`]);
    const client = new AdminClient(admin.endpoint, { timeoutMs: 5000 });
    try {
      const listed = (await client.list()).namespaces.map((n) => n.name);
      expect(listed).toEqual(expect.arrayContaining(names));
    } finally {
      client.close();
    }
  });
});
