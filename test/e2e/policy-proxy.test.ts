import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { DataClient } from '../../src/client/data-client.js';
import { loginAs } from '../support/dev-login.js';
import { ensureBuilt } from '../support/cli.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';
import { TokenIssuer } from '../support/token-issuer.js';

/**
 * Cedar policies decided in the proxy, end to end: namespaces with `access.policies` are served
 * by a real `proxy serve`; callers log in at the development provider (alice: commerce, bob:
 * analytics) or hold tokens of a second issuer with claims the provider cannot issue (tenant, an
 * old iat). Every call goes through gRPC, token verification and the policies.
 */
describe('policies in the proxy', () => {
  const idp = new DevIdp();
  const tokens = new TokenIssuer();
  const keyPrefix = uniqueName('kp');
  const topics = uniqueName('tp');
  const tenants = uniqueName('ti');
  const window = uniqueName('tw');
  const closed = uniqueName('tc');
  const age = uniqueName('ta');
  let proxy: RunningServer;
  let endpoint: string;
  let alice: string;
  let bob: string;
  let metricsPort: number;

  const hour = new Date().getUTCHours();
  // Hours around now (a test crossing the hour stays inside) and hours far from now.
  const near = [hour + 23, hour, hour + 1].map((h) => h % 24);
  const far = [hour + 11, hour + 12, hour + 13].map((h) => h % 24);
  const anyHour = (hours: number[]) => hours.map((h) => `context.hour == ${h}`).join(' || ');

  const namespace = (name: string, issuer: string, audience: string, body: string) =>
    `namespace: ${name}\nteam: commerce\npatterns:\n${body}auth:\n  enabled: true\n  issuer: ${issuer}\n  audiences: [${audience}]\n`;
  const kv = '  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n';
  const producer =
    '  - name: events\n    type: producer\n    slots:\n      sink: { backend: memstore }\n    settings: { topic: orders.created }\n';

  beforeAll(async () => {
    await ensureBuilt();
    const devIssuer = await idp.start();
    const otherIssuer = await tokens.start();
    alice = await loginAs(idp, 'alice@example.com');
    bob = await loginAs(idp, 'bob@example.com');
    const dir = mkdtempSync(join(tmpdir(), 'prism-policy-ns-'));
    mkdirSync(join(dir, 'policies'));
    writeFileSync(
      join(dir, 'policies', 'reports.cedar'),
      `// analysts read what is under reports/, nothing else
@id("analysts-read-reports")
permit (principal in Prism::Group::"analytics", action in Prism::Action::"read", resource is Prism::Key)
when { resource.key like "reports/*" };
`,
    );
    writeFileSync(
      join(dir, `${keyPrefix}.yaml`),
      namespace(keyPrefix, devIssuer, DEV_AUDIENCE, kv) +
        'access:\n  owners: [{ team: commerce }]\n  policies:\n    - file: policies/reports.cedar\n',
    );
    writeFileSync(
      join(dir, `${topics}.yaml`),
      namespace(topics, devIssuer, DEV_AUDIENCE, producer) +
        `access:
  owners: [{ team: commerce }]
  policies:
    - cedar: |
        @id("analytics-publishes-orders")
        permit (principal in Prism::Group::"analytics", action == Prism::Action::"producer.publish", resource)
        when { resource.topic like "orders.*" };
`,
    );
    writeFileSync(
      join(dir, `${tenants}.yaml`),
      namespace(tenants, otherIssuer, 'prism', kv) +
        `access:
  consumers: [{ subject: 'group:shared', permissions: [read, write] }]
  policies:
    - cedar: |
        @id("tenant-isolation")
        forbid (principal, action, resource is Prism::Key)
        unless { principal.tenant == "acme" && resource.key like "acme/*" || principal.tenant == "globex" && resource.key like "globex/*" };
`,
    );
    const hoursPolicy = (name: string, hours: number[]) =>
      namespace(name, devIssuer, DEV_AUDIENCE, kv) +
      `access:
  owners: [{ team: commerce }]
  policies:
    - cedar: |
        @id("analysts-in-hours")
        permit (principal in Prism::Group::"analytics", action in Prism::Action::"read", resource)
        when { ${anyHour(hours)} };
`;
    writeFileSync(join(dir, `${window}.yaml`), hoursPolicy(window, near));
    writeFileSync(join(dir, `${closed}.yaml`), hoursPolicy(closed, far));
    writeFileSync(
      join(dir, `${age}.yaml`),
      namespace(age, otherIssuer, 'prism', kv) +
        `access:
  consumers: [{ subject: 'group:shared', permissions: [read, write] }]
  policies:
    - cedar: |
        @id("fresh-tokens")
        forbid (principal, action, resource)
        when { context has token_age_seconds && context.token_age_seconds > 43200 };
`,
    );
    proxy = await startProxy({ namespaces: dir }, ['--policy-log-sample', '0']);
    endpoint = `127.0.0.1:${proxy.ready.port as number}`;
    metricsPort = proxy.ready.httpPort as number;
  }, 90_000);

  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
    await idp.stop();
    await tokens.stop();
  });

  const client = (namespace: string, token: string) => new DataClient(endpoint, { namespace, token });
  const value = new TextEncoder().encode('v');
  const denial = (p: Promise<unknown>) =>
    p.then(
      () => 'allowed',
      (err: { code?: string; message?: string }) => `${err.code}: ${err.message}`,
    );

  it('key prefix: analysts read keys under reports/ and nothing else; owners keep full access', async () => {
    const owner = client(keyPrefix, alice);
    const analyst = client(keyPrefix, bob);
    try {
      await owner.set('reports/q1', value);
      await owner.set('payroll/q1', value);
      expect((await analyst.get('reports/q1')).found).toBe(true);
      expect((await analyst.scan('reports/')).keys).toEqual(['reports/q1']);
      expect(await denial(analyst.get('payroll/q1'))).toBe(
        `E_PERMISSION_DENIED: bob@example.com may not keyvalue.get key 'payroll/q1' in namespace '${keyPrefix}' (no policy permits it)`,
      );
      expect(await denial(analyst.scan(''))).toMatch(/^E_PERMISSION_DENIED: .* keyvalue\.scan key ''/);
      expect(await denial(analyst.batchGet(['reports/q1', 'payroll/q1']))).toMatch(
        /^E_PERMISSION_DENIED: .* keyvalue\.get key 'payroll\/q1'/,
      );
      expect(await denial(analyst.set('reports/q2', value))).toMatch(
        /^E_PERMISSION_DENIED: .* keyvalue\.set/,
      );
      expect((await owner.get('payroll/q1')).found).toBe(true);
    } finally {
      owner.close();
      analyst.close();
    }
  });

  it('topic pattern: analytics may publish to orders.* only, the owners anywhere', async () => {
    const analyst = client(topics, bob);
    const owner = client(topics, alice);
    try {
      expect((await analyst.publish({ payload: value })).messageId).not.toBe('');
      expect((await analyst.publish({ topic: 'orders.refunded', payload: value })).messageId).not.toBe('');
      expect(await denial(analyst.publish({ topic: 'payments.settled', payload: value }))).toBe(
        `E_PERMISSION_DENIED: bob@example.com may not producer.publish topic 'payments.settled' in namespace '${topics}' (no policy permits it)`,
      );
      expect((await owner.publish({ topic: 'payments.settled', payload: value })).messageId).not.toBe('');
    } finally {
      analyst.close();
      owner.close();
    }
  });

  it('topic pattern through a PublishStream: each message is decided by its topic, the refused alone', async () => {
    const analyst = client(topics, bob);
    try {
      const stream = analyst.publishStream();
      const outcomes = await Promise.allSettled([
        stream.publish({ payload: value }),
        stream.publish({ topic: 'orders.refunded', payload: value }),
        stream.publish({ topic: 'payments.settled', payload: value }),
        stream.publish({ topic: 'orders.shipped', payload: value }),
      ]);
      await stream.end();
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      const refusal = (outcomes[2] as PromiseRejectedResult).reason as { code?: string; message?: string };
      expect(`${refusal.code}: ${refusal.message}`).toBe(
        `E_PERMISSION_DENIED: bob@example.com may not producer.publish topic 'payments.settled' in namespace '${topics}' (no policy permits it)`,
      );
    } finally {
      analyst.close();
    }
  });

  it("tenant isolation: a tenant reads and writes its own keys and never another tenant's", async () => {
    const acme = client(tenants, await tokens.mint('ann', { tenant: 'acme', groups: ['shared'] }, 'prism'));
    const globex = client(
      tenants,
      await tokens.mint('gus', { tenant: 'globex', groups: ['shared'] }, 'prism'),
    );
    try {
      await acme.set('acme/plan', value);
      await globex.set('globex/plan', value);
      expect((await acme.get('acme/plan')).found).toBe(true);
      expect(await denial(acme.get('globex/plan'))).toBe(
        `E_PERMISSION_DENIED: ann may not keyvalue.get key 'globex/plan' in namespace '${tenants}' (forbidden by tenant-isolation)`,
      );
      expect(await denial(globex.set('acme/plan', value))).toMatch(/forbidden by tenant-isolation\)$/);
      expect(await denial(globex.scan('acme/'))).toMatch(/forbidden by tenant-isolation\)$/);
    } finally {
      acme.close();
      globex.close();
    }
  });

  it("time window: the proxy's clock in context.hour admits analysts inside the window and not outside", async () => {
    const owner = client(window, alice);
    const inside = client(window, bob);
    const outside = client(closed, bob);
    try {
      await owner.set('k', value);
      expect((await inside.get('k')).found).toBe(true);
      expect(await denial(outside.get('k'))).toBe(
        `E_PERMISSION_DENIED: bob@example.com may not keyvalue.get key 'k' in namespace '${closed}' (no policy permits it)`,
      );
    } finally {
      owner.close();
      inside.close();
      outside.close();
    }
  });

  it('token age: a token issued 13 hours ago is refused, a fresh one is served', async () => {
    const fresh = client(age, await tokens.mint('ann', { groups: ['shared'] }, 'prism'));
    const old = client(age, await tokens.mint('ann', { groups: ['shared'] }, 'prism', 13 * 3600));
    try {
      await fresh.set('k', value);
      expect((await fresh.get('k')).found).toBe(true);
      expect(await denial(old.get('k'))).toBe(
        `E_PERMISSION_DENIED: ann may not keyvalue.get key 'k' in namespace '${age}' (forbidden by fresh-tokens)`,
      );
    } finally {
      fresh.close();
      old.close();
    }
  });

  it('logs every denial without token contents and counts decisions per policy', async () => {
    const logs = proxy.logs();
    const denials = logs
      .split('\n')
      .filter((l) => l.includes('"msg":"policy decision"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(denials).toContainEqual(
      expect.objectContaining({
        decision: 'deny',
        scope: tenants,
        action: 'keyvalue.get',
        subject: 'ann',
        resource: { type: 'Key', pattern: 'cache', key: 'globex/plan' },
        policies: ['tenant-isolation'],
      }),
    );
    expect(denials.every((d) => d.decision === 'deny')).toBe(true);
    expect(logs).not.toContain(alice);
    expect(logs).not.toContain(bob);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(
        `prism_policy_decisions_total\\{scope="${tenants}",action="keyvalue.get",decision="deny",policy="tenant-isolation"\\} 1\\n`,
      ),
    );
    expect(metrics).toMatch(
      new RegExp(
        `prism_policy_decisions_total\\{scope="${keyPrefix}",action="keyvalue.get",decision="allow",policy="analysts-read-reports"\\} \\d+\\n`,
      ),
    );
  });
});
