import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import type { PrismError } from '../../src/errors.js';
import { startAdmin } from '../support/admin-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { loginAs } from '../support/dev-login.js';
import { eventually } from '../support/eventually.js';
import { startPrismServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

/**
 * A proxy following the control plane picks up a changed policy file on the next apply: the
 * decision it cached under the old policies is not served again.
 */
describe('policies applied through the control plane', () => {
  it('a re-applied policy file replaces the cached decisions of the old one', async () => {
    await ensureBuilt();
    const idp = new DevIdp();
    const issuer = await idp.start();
    const bob = await loginAs(idp, 'bob@example.com');
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
    const name = uniqueName('reapply');
    const dir = mkdtempSync(join(tmpdir(), 'prism-policy-apply-'));
    const policyFile = join(dir, 'analysts.cedar');
    writeFileSync(
      join(dir, 'ns.yaml'),
      `namespace: ${name}\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\nauth:\n  enabled: true\n  issuer: ${issuer}\n  audiences: [${DEV_AUDIENCE}]\naccess:\n  consumers: [{ subject: 'group:analytics', permissions: [read] }]\n  policies:\n    - file: analysts.cedar\n`,
    );
    const apply = async () =>
      expect(
        (await runCli(['namespace', 'apply', join(dir, 'ns.yaml'), '--admin', admin.endpoint])).code,
      ).toBe(0);
    const client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, { namespace: name, token: bob });
    const outcome = () =>
      client.get('k').then(
        () => 'allowed',
        (err: PrismError) => err.code,
      );
    try {
      writeFileSync(
        policyFile,
        '@id("pause")\nforbid (principal in Prism::Group::"analytics", action, resource);\n',
      );
      await apply();
      await eventually('the namespace being served', async () => {
        if ((await outcome()) !== 'E_PERMISSION_DENIED') throw new Error('not served yet');
      });
      expect(await outcome()).toBe('E_PERMISSION_DENIED');
      writeFileSync(
        policyFile,
        '@id("pause")\nforbid (principal in Prism::Group::"analytics", action, resource)\nwhen { false };\n',
      );
      await apply();
      await eventually('the new policies being evaluated', async () => {
        if ((await outcome()) !== 'allowed') throw new Error('still denied');
      });
      expect(proxy.logs()).toContain('"policies":["pause"]');
    } finally {
      client.close();
      expect(await proxy.stop()).toBe(0);
      expect(await admin.stop()).toBe(0);
      await idp.stop();
    }
  }, 60_000);

  it("evaluates the admin's global policies with every namespace's own", async () => {
    await ensureBuilt();
    const idp = new DevIdp();
    const issuer = await idp.start();
    const alice = await loginAs(idp, 'alice@example.com');
    const dir = mkdtempSync(join(tmpdir(), 'prism-policy-global-'));
    writeFileSync(
      join(dir, 'audit.cedar'),
      '@id("keep-audit")\nforbid (principal, action == Prism::Action::"keyvalue.delete", resource is Prism::Key)\nwhen { resource.key like "audit/*" };\n',
    );
    const admin = await startAdmin({
      extraArgs: ['--heartbeat-interval', '300', '--policies', join(dir, 'audit.cedar')],
    });
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
    const name = uniqueName('global');
    writeFileSync(
      join(dir, 'ns.yaml'),
      `namespace: ${name}\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\nauth:\n  enabled: true\n  issuer: ${issuer}\n  audiences: [${DEV_AUDIENCE}]\n`,
    );
    const client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, {
      namespace: name,
      token: alice,
    });
    try {
      expect(
        (await runCli(['namespace', 'apply', join(dir, 'ns.yaml'), '--admin', admin.endpoint])).code,
      ).toBe(0);
      await eventually('the namespace being served', () => client.set('audit/1', Buffer.from('v')));
      await client.set('scratch/1', Buffer.from('v'));
      expect((await client.delete('scratch/1')).existed).toBe(true);
      await expect(client.delete('audit/1')).rejects.toMatchObject({
        code: 'E_PERMISSION_DENIED',
        message: `alice@example.com may not keyvalue.delete key 'audit/1' in namespace '${name}' (forbidden by global.keep-audit)`,
      });
      expect((await client.get('audit/1')).found).toBe(true);
    } finally {
      client.close();
      expect(await proxy.stop()).toBe(0);
      expect(await admin.stop()).toBe(0);
      await idp.stop();
    }
  }, 60_000);
});
