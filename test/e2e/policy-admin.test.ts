import { create } from '@bufbuild/protobuf';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { AdminClient, RemoteValidationError } from '../../src/client/admin-client.js';
import { NamespaceRequestSchema } from '../../src/gen/prism/config/v1/namespace_pb.js';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { loginAs } from '../support/dev-login.js';
import { startPrismServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

/**
 * Policies on the control plane and in the CLI, end to end: a policy with a syntax or schema error
 * is refused by `namespace validate` and `namespace apply` at file:line:col (and by the admin
 * itself when a client skips local validation); the admin decides calls with its default set and
 * global `--policies`; `policy check` runs expected decisions with the clock injected per case.
 */
describe('policies on the control plane and in the CLI', () => {
  const idp = new DevIdp();
  const devHome = mkdtempSync(join(tmpdir(), 'prism-policy-dev-'));
  const bobHome = mkdtempSync(join(tmpdir(), 'prism-policy-bob-'));
  const dir = mkdtempSync(join(tmpdir(), 'prism-policy-admin-'));
  let admin: RunningAdmin;
  let devToken: string;

  const kv = '  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n';
  const ns = (name: string, team: string, access = '') =>
    `namespace: ${name}\nteam: ${team}\npatterns:\n${kv}${access}`;

  beforeAll(async () => {
    await ensureBuilt();
    const issuer = await idp.start();
    devToken = await loginAs(idp, 'dev@local.prism', devHome);
    await loginAs(idp, 'bob@example.com', bobHome);
    mkdirSync(join(dir, 'global'));
    writeFileSync(
      join(dir, 'global', 'control.cedar'),
      `@id("teams-apply-their-own")
permit (principal, action == Prism::Action::"namespace.apply", resource)
when { resource has team && principal.groups.contains(resource.team) };

@id("keep-prod")
forbid (principal, action == Prism::Action::"namespace.delete", resource)
when { resource.name like "prod-*" };
`,
    );
    admin = await startAdmin({
      extraArgs: [
        ...['--auth-issuer', issuer, '--auth-audience', DEV_AUDIENCE],
        ...['--auth-admin-group', 'prism-admins', '--auth-reader-group', 'analytics'],
        ...['--policies', join(dir, 'global')],
      ],
    });
  }, 60_000);

  afterAll(async () => {
    expect(await admin?.stop()).toBe(0);
    await idp.stop();
  });

  const cli = (home: string, ...args: string[]) =>
    runCli([...args, '--admin', admin.endpoint], { env: { PRISM_HOME: home, PRISM_TOKEN: '' } });

  it('refuses a syntax error in a policy file at validate and at apply, at the file own line and column', async () => {
    const name = uniqueName('bad-syntax');
    const nsDir = join(dir, name);
    mkdirSync(join(nsDir, 'policies'), { recursive: true });
    writeFileSync(join(nsDir, 'policies', 'p.cedar'), 'permit (\n  principal,\n  action\n  resource\n);\n');
    writeFileSync(
      join(nsDir, 'ns.yaml'),
      ns(
        name,
        'commerce',
        'access:\n  owners: [{ team: commerce }]\n  policies:\n    - file: policies/p.cedar\n',
      ),
    );
    const expected = `${join(nsDir, 'policies', 'p.cedar')}:4:3: error E_POLICY_SYNTAX: unexpected token \`resource\``;
    const validated = await runCli(['namespace', 'validate', join(nsDir, 'ns.yaml')]);
    expect(validated.code).toBe(1);
    expect(validated.stdout).toContain(expected);
    const applied = await cli(devHome, 'namespace', 'apply', join(nsDir, 'ns.yaml'));
    expect(applied.code).toBe(1);
    expect(applied.stderr + applied.stdout).toContain(expected);
    expect((await cli(devHome, 'namespace', 'get', name)).stderr).toContain('E_NOT_FOUND');
  });

  it('refuses a schema error in inline Cedar at validate and at apply, at its place in the YAML', async () => {
    const name = uniqueName('bad-schema');
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      ns(
        name,
        'commerce',
        'access:\n  policies:\n    - cedar: |\n        permit (principal, action, resource)\n        when { context.weekday == 1 };\n',
      ),
    );
    const expected = `${file}:12:16: error E_POLICY_SCHEMA: attribute \`weekday\` in context not found`;
    const validated = await runCli(['namespace', 'validate', file]);
    expect(validated.code).toBe(1);
    expect(validated.stdout).toContain(expected);
    const applied = await cli(devHome, 'namespace', 'apply', file);
    expect(applied.code).toBe(1);
    expect(applied.stderr + applied.stdout).toContain(expected);
  });

  it('the admin itself refuses invalid policies from a client that skipped local validation', async () => {
    const client = new AdminClient(admin.endpoint, { token: devToken });
    const name = uniqueName('raw');
    const request = (policies: { file?: string; cedar?: string }[]) =>
      create(NamespaceRequestSchema, {
        namespace: name,
        team: 'commerce',
        patterns: [{ name: 'cache', type: 'keyvalue', slots: { store: { backend: 'memstore' } } }],
        access: { policies },
      });
    try {
      const refused = await client
        .apply({
          namespace: request([{ cedar: 'forbid (principal, action, resource) when { principal.age > 3 };' }]),
          source: 'raw.yaml',
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(refused).toBeInstanceOf(RemoteValidationError);
      expect(
        (refused as RemoteValidationError).diagnostics.map((d) => `${d.file} ${d.rule} ${d.message}`),
      ).toEqual(['raw.yaml E_POLICY_SCHEMA attribute `age` on entity type `Prism::User` not found']);
      const unread = await client
        .apply({ namespace: request([{ file: 'p.cedar' }]), source: 'raw.yaml' })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect((unread as RemoteValidationError).diagnostics.map((d) => d.rule)).toEqual(['E_POLICY_FILE']);
    } finally {
      client.close();
    }
  });

  it('stores the text of a policy file with the namespace, so what is evaluated is what was validated', async () => {
    const name = uniqueName('stored');
    const nsDir = join(dir, name);
    mkdirSync(nsDir);
    const text =
      '@id("analysts-read")\npermit (principal in Prism::Group::"analysts", action in Prism::Action::"read", resource);\n';
    writeFileSync(join(nsDir, 'read.cedar'), text);
    writeFileSync(
      join(nsDir, 'ns.yaml'),
      ns(name, 'commerce', 'access:\n  owners: [{ team: commerce }]\n  policies:\n    - file: read.cedar\n'),
    );
    expect((await cli(devHome, 'namespace', 'apply', join(nsDir, 'ns.yaml'))).code).toBe(0);
    const exported = await cli(devHome, 'namespace', 'export', name, '--format', 'json');
    expect(JSON.parse(exported.stdout).access.policies).toEqual([{ file: 'read.cedar', cedar: text }]);
  });

  it('decides control-plane calls with the default set and the global policies', async () => {
    const own = uniqueName('bobs');
    const other = uniqueName('notbobs');
    const prod = uniqueName('prod');
    writeFileSync(join(dir, `${own}.yaml`), ns(own, 'analytics'));
    writeFileSync(join(dir, `${other}.yaml`), ns(other, 'commerce'));
    writeFileSync(join(dir, `${prod}.yaml`), ns(prod, 'commerce'));
    // bob is only a reader by the admin's groups; the global policy lets him apply his team's.
    expect((await cli(bobHome, 'namespace', 'apply', join(dir, `${own}.yaml`))).code).toBe(0);
    const refused = await cli(bobHome, 'namespace', 'apply', join(dir, `${other}.yaml`));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('bob@example.com may not write on the control plane (ApplyNamespace)');
    // An admin may delete, except what keep-prod forbids.
    expect((await cli(devHome, 'namespace', 'apply', join(dir, `${prod}.yaml`))).code).toBe(0);
    const kept = await cli(devHome, 'namespace', 'delete', prod, '--yes');
    expect(kept.code).toBe(1);
    expect(kept.stderr).toContain(
      'dev@local.prism may not write on the control plane (DeleteNamespace; forbidden by keep-prod)',
    );
    expect((await cli(devHome, 'namespace', 'delete', own, '--yes')).code).toBe(0);
  });

  it('refuses to start an admin whose global policies do not validate, naming path:line:col', async () => {
    const bad = join(dir, 'bad-global.cedar');
    writeFileSync(bad, 'permit (principal, action, resource)\nwhen { resource.owner == "x" };\n');
    const started = startPrismServer(
      [
        'admin',
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
        '--policies',
        bad,
        '--auth-issuer',
        idp.issuer,
        '--auth-audience',
        DEV_AUDIENCE,
      ],
      'prism admin serving',
    );
    await expect(started).rejects.toThrow(`${bad}:2:8: error E_POLICY_SCHEMA: attribute \`owner\``);
  });

  it('policy check runs expected decisions with the clock set per case, and exits 1 on a mismatch', async () => {
    const checks = join(dir, 'checks');
    mkdirSync(join(checks, 'cases'), { recursive: true });
    writeFileSync(
      join(checks, 'reports.yaml'),
      ns(
        'reports',
        'analytics',
        `access:
  owners: [{ team: analytics }]
  policies:
    - cedar: |
        @id("analysts-working-hours")
        permit (principal in Prism::Group::"analysts", action in Prism::Action::"read", resource is Prism::Key)
        when { resource.key like "reports/*" && context.hour >= 9 && context.hour < 17 };
`,
      ),
    );
    const cases = (lateExpectation: string) => `namespace: ../reports.yaml
cases:
  - name: analysts read reports at 10:00
    principal: { subject: ann, groups: [analysts] }
    action: keyvalue.get
    resource: cache:reports/q1
    context: { time: '2026-12-03T10:00:00Z' }
    expect: allow
    policies: [analysts-working-hours]
  - name: not at 23:00
    principal: { subject: ann, groups: [analysts] }
    action: Get
    resource: reports/q1
    context: { time: '2026-12-03T23:00:00Z' }
    expect: ${lateExpectation}
  - name: owners any time
    principal: { subject: oz, groups: [analytics] }
    action: keyvalue.set
    resource: payroll/1
    context: { time: '2026-12-03T23:00:00Z' }
    expect: allow
    policies: [default.owner.analytics]
`;
    const file = join(checks, 'cases', 'hours.yaml');
    writeFileSync(file, cases('deny'));
    const passing = await runCli(['policy', 'check', join(checks, 'cases')]);
    expect(passing.code).toBe(0);
    expect(passing.stdout).toBe(
      `PASS ${file}:3 analysts read reports at 10:00\nPASS ${file}:10 not at 23:00\nPASS ${file}:16 owners any time\n3 passed, 0 failed\n`,
    );
    writeFileSync(file, cases('allow'));
    const failing = await runCli(['policy', 'check', join(checks, 'cases'), '--json']);
    expect(failing.code).toBe(1);
    expect(JSON.parse(failing.stdout)).toMatchObject({
      passed: 2,
      failed: 1,
      results: [
        { pass: true },
        { name: 'not at 23:00', expected: 'allow', actual: 'deny', pass: false },
        { pass: true },
      ],
    });
    const explained = await runCli([
      'policy',
      'test',
      join(checks, 'reports.yaml'),
      ...['--principal', 'ann', '--group', 'analysts', '--action', 'Get', '--resource', 'reports/q1'],
      ...['--time', '2026-12-03T10:00:00Z'],
    ]);
    expect(explained.code).toBe(0);
    expect(explained.stdout).toBe(
      `ALLOW: keyvalue.get on key 'reports/q1' (pattern cache) in reports\n  permitted by analysts-working-hours (access.policies[0]:1)\n` +
        readFileSync(join(checks, 'reports.yaml'), 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('        '))
          .map((l) => `    ${l.slice(8)}\n`)
          .join(''),
    );
  });
});
