import { create } from '@bufbuild/protobuf';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { clientIpOf, PolicyAuthorizer } from '../../../../src/auth/policy/authorizer.js';
import type { NamedPolicy } from '../../../../src/auth/policy/defaults.js';
import { dataActionOf } from '../../../../src/auth/policy/model.js';
import {
  CompiledPolicySet,
  type PolicyPrincipal,
  type PolicyResource,
} from '../../../../src/auth/policy/policy-set.js';
import { NamespaceRequestSchema, Permission } from '../../../../src/gen/prism/config/v1/namespace_pb.js';

const policy = (id: string, text: string): NamedPolicy => ({ id, text, source: 'test', line: 1 });
const ann: PolicyPrincipal = { subject: 'ann', tenant: 'acme', groups: ['analysts'], scopes: [], claims: {} };
const key = (k: string): PolicyResource => ({ kind: 'Key', namespace: 'ns', pattern: 'cache', key: k });
const get = dataActionOf('Get');
const at = (iso: string) => ({ now: new Date(iso) });

describe('a compiled policy set', () => {
  it('caches decisions when no policy reads the context, and says so', () => {
    const set = new CompiledPolicySet([
      policy('p', 'permit (principal in Prism::Group::"analysts", action, resource);'),
    ]);
    expect(set.reads).toEqual({
      context: new Set(),
      resourceDetail: false,
      claims: false,
      attributes: new Set(),
    });
    expect(set.evaluate(get, ann, key('a'), at('2026-12-03T10:00:00Z'))).toEqual({
      allowed: true,
      policies: ['p'],
      errors: [],
      cached: false,
    });
    expect(set.evaluate(get, ann, key('b'), at('2026-12-03T10:00:00Z')).cached).toBe(true);
    expect(set.evaluate(get, { ...ann, groups: [] }, key('a'), at('2026-12-03T10:00:00Z'))).toMatchObject({
      allowed: false,
      cached: false,
    });
  });

  it('keys the cache by the key when a policy reads it, so each key is decided on its own', () => {
    const set = new CompiledPolicySet([
      policy(
        'reports',
        'permit (principal, action, resource is Prism::Key) when { resource.key like "reports/*" };',
      ),
    ]);
    expect(set.reads.resourceDetail).toBe(true);
    const decide = (k: string) => set.evaluate(get, ann, key(k), at('2026-12-03T10:00:00Z'));
    expect([decide('reports/a').allowed, decide('payroll/a').allowed, decide('reports/a')]).toEqual([
      true,
      false,
      { allowed: true, policies: ['reports'], errors: [], cached: true },
    ]);
  });

  it('keys the cache by the context values policies read, so each hour is decided on its own', () => {
    const set = new CompiledPolicySet([
      policy(
        'hours',
        'permit (principal, action, resource) when { context.hour >= 9 && context.hour < 17 };',
      ),
    ]);
    expect([...set.reads.context]).toEqual(['hour']);
    expect(set.evaluate(get, ann, key('a'), at('2026-12-03T10:00:00Z'))).toMatchObject({
      allowed: true,
      cached: false,
    });
    expect(set.evaluate(get, ann, key('a'), at('2026-12-03T10:59:00Z'))).toMatchObject({
      allowed: true,
      cached: true,
    });
    expect(set.evaluate(get, ann, key('a'), at('2026-12-03T18:00:00Z'))).toMatchObject({
      allowed: false,
      cached: false,
    });
    expect(set.evaluate(get, ann, key('a'), at('2026-12-03T18:30:00Z'))).toMatchObject({
      allowed: false,
      cached: true,
    });
  });

  it('never caches when a policy reads context.time: each call sees its own instant', () => {
    const set = new CompiledPolicySet([
      policy(
        'before',
        'permit (principal, action, resource) when { context.time < datetime("2026-12-03T10:00:00Z") };',
      ),
    ]);
    expect(set.cacheable).toBe(false);
    expect(set.evaluate(get, ann, key('a'), at('2026-12-03T09:59:59.999Z'))).toMatchObject({
      allowed: true,
      cached: false,
    });
    expect(set.evaluate(get, ann, key('a'), at('2026-12-03T10:00:00.000Z'))).toMatchObject({
      allowed: false,
      cached: false,
    });
  });

  it('keys the cache by token age in whole seconds', () => {
    const set = new CompiledPolicySet([
      policy(
        'fresh',
        'permit (principal, action, resource) when { context has token_age_seconds && context.token_age_seconds <= 60 };',
      ),
    ]);
    const issued = Date.parse('2026-12-03T10:00:00Z') / 1000;
    const young = { ...ann, issuedAt: issued };
    expect(set.evaluate(get, young, key('a'), at('2026-12-03T10:01:00Z'))).toMatchObject({
      allowed: true,
      cached: false,
    });
    expect(set.evaluate(get, young, key('a'), at('2026-12-03T10:01:00.900Z'))).toMatchObject({
      allowed: true,
      cached: true,
    });
    expect(set.evaluate(get, young, key('a'), at('2026-12-03T10:01:01Z'))).toMatchObject({
      allowed: false,
      cached: false,
    });
  });

  it('reads datetime, weekday, client address and token age from the context', () => {
    const set = new CompiledPolicySet([
      policy(
        'all',
        `permit (principal, action, resource) when {
           context.time.toTime() >= duration("9h") && context.day_of_week == 4 &&
           context has client_ip && context.client_ip.isInRange(ip("10.0.0.0/8")) &&
           context has token_age_seconds && context.token_age_seconds < 60 };`,
      ),
    ]);
    const issued = Date.parse('2026-12-03T10:00:00Z') / 1000 - 30;
    const call = { now: new Date('2026-12-03T10:00:00Z'), clientIp: '10.1.2.3' };
    expect(set.evaluate(get, { ...ann, issuedAt: issued }, key('a'), call).allowed).toBe(true);
    expect(set.evaluate(get, { ...ann, issuedAt: issued - 60 }, key('a'), call).allowed).toBe(false);
    expect(
      set.evaluate(get, { ...ann, issuedAt: issued }, key('a'), { ...call, clientIp: '192.168.0.1' }).allowed,
    ).toBe(false);
    expect(
      set.evaluate(get, { ...ann, issuedAt: issued }, key('a'), { ...call, clientIp: undefined }).allowed,
    ).toBe(false);
    expect(set.evaluate(get, ann, key('a'), call).allowed).toBe(false);
  });

  it('keys the cache by the claims when a policy reads them', () => {
    const set = new CompiledPolicySet([
      policy(
        'risk',
        'permit (principal, action, resource) when { principal.hasTag("dept") && principal.getTag("dept") == "risk" };',
      ),
    ]);
    expect(set.reads.claims).toBe(true);
    expect(
      set.evaluate(get, { ...ann, claims: { dept: 'risk' } }, key('a'), at('2026-12-03T10:00:00Z')).allowed,
    ).toBe(true);
    expect(
      set.evaluate(get, { ...ann, claims: { dept: 'sales' } }, key('a'), at('2026-12-03T10:00:00Z')).allowed,
    ).toBe(false);
  });

  it('lets a forbid win over a permit and names it', () => {
    const set = new CompiledPolicySet([
      policy('all', 'permit (principal, action, resource);'),
      policy('no-acme', 'forbid (principal, action, resource) when { principal.tenant == "acme" };'),
    ]);
    expect(set.evaluate(get, ann, key('a'), at('2026-12-03T10:00:00Z'))).toMatchObject({
      allowed: false,
      policies: ['no-acme'],
    });
  });
});

describe('the policy authorizer', () => {
  const ns = (consumers: { subject: string; permissions: Permission[] }[]) =>
    create(NamespaceRequestSchema, {
      namespace: 'ns',
      team: 'commerce',
      access: { owners: [{ team: 'commerce' }], consumers },
    });

  it('keeps one compiled set per namespace content and starts over (empty cache) when it changes', () => {
    const authorizer = new PolicyAuthorizer();
    const v1 = authorizer.namespaceSet(ns([]));
    expect(authorizer.namespaceSet(ns([]))).toBe(v1);
    expect(v1.evaluate(get, ann, key('a'), at('2026-12-03T10:00:00Z')).allowed).toBe(false);
    const v2 = authorizer.namespaceSet(ns([{ subject: 'group:analysts', permissions: [Permission.READ] }]));
    expect(v2).not.toBe(v1);
    expect(v2.version).not.toBe(v1.version);
    expect(v2.evaluate(get, ann, key('a'), at('2026-12-03T10:00:00Z'))).toMatchObject({
      allowed: true,
      cached: false,
    });
  });

  it('logs every denial and a sample of allows, with the deciding policies and no claims', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    );
    const set = new CompiledPolicySet([
      policy(
        'reports',
        'permit (principal, action, resource is Prism::Key) when { resource.key like "reports/*" };',
      ),
    ]);
    const secret = { ...ann, claims: { session_hint: 'do-not-log' } };
    const decideWith = (rate: number, k: string) =>
      new PolicyAuthorizer({ logger, allowLogSampleRate: rate, random: () => 0.5 }).decide(
        set,
        'ns',
        get,
        secret,
        key(k),
        at('2026-12-03T10:00:00Z'),
      );
    decideWith(0, 'reports/a');
    decideWith(0.4, 'reports/a');
    expect(lines).toEqual([]);
    decideWith(0.6, 'reports/a');
    decideWith(0, 'payroll/a');
    expect(lines.map((l) => [l.msg, l.decision, l.policies, l.resource, l.sampled])).toEqual([
      ['policy decision', 'allow', ['reports'], { type: 'Key', pattern: 'cache', key: 'reports/a' }, true],
      ['policy decision', 'deny', [], { type: 'Key', pattern: 'cache', key: 'payroll/a' }, false],
    ]);
    expect(JSON.stringify(lines)).not.toContain('do-not-log');
  });

  it('refuses a whole call when one key of a batch is denied', () => {
    const authorizer = new PolicyAuthorizer();
    const set = new CompiledPolicySet([
      policy(
        'reports',
        'permit (principal, action, resource is Prism::Key) when { resource.key like "reports/*" };',
      ),
    ]);
    expect(() =>
      authorizer.authorize(
        set,
        'ns',
        get,
        ann,
        [key('reports/a'), key('payroll/a')],
        at('2026-12-03T10:00:00Z'),
      ),
    ).toThrow("ann may not keyvalue.get key 'payroll/a' in namespace 'ns' (no policy permits it)");
  });

  it("finds the client's address in grpc-js peer strings", () => {
    expect(
      [
        '127.0.0.1:5000',
        'ipv4:10.0.0.1:1',
        '[::1]:5000',
        'ipv6:[::ffff:10.1.1.1]:80',
        'unix:/tmp/s',
        undefined,
      ].map(clientIpOf),
    ).toEqual(['127.0.0.1', '10.0.0.1', '::1', '10.1.1.1', undefined, undefined]);
  });
});
