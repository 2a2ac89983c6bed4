import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { actionOf, grantedActions, type Principal } from '../../../../src/auth/authorize.js';
import {
  adminActionOf,
  adminGrants,
  type AdminAuthOptions,
} from '../../../../src/auth/admin-authenticate.js';
import {
  defaultControlPlanePolicies,
  defaultNamespacePolicies,
} from '../../../../src/auth/policy/defaults.js';
import { controlActionOf, dataActionOf } from '../../../../src/auth/policy/model.js';
import { CompiledPolicySet, type PolicyPrincipal } from '../../../../src/auth/policy/policy-set.js';
import {
  NamespaceRequestSchema,
  Permission,
  type NamespaceRequest,
} from '../../../../src/gen/prism/config/v1/namespace_pb.js';

/**
 * Existing namespaces keep their meaning exactly: over a table of namespaces, principals and
 * every method the proxy authorizes, the Cedar default set decides as the rule it replaced
 * (src/auth/authorize.ts). Acknowledge is absent: it is never authorized per call, it settles a
 * delivery of a subscription that Subscribe authorized.
 */
const DATA_METHODS = [
  'Get',
  'Exists',
  'Scan',
  'GetTtl',
  'BatchGet',
  'Set',
  'Delete',
  'Expire',
  'Persist',
  'BatchSet',
  'BatchDelete',
  'Publish',
  'PublishBatch',
  'PublishStream',
  'Subscribe',
  'Consume',
  'ListCallerSessions',
  'RevokeCallerSession',
  'SomeFutureMethod',
];
// The mailbox's Get and Delete share their names with keyvalue's; they are their own actions.
const MAILBOX_METHODS = ['Query', 'Get', 'Watch', 'Delete'];

type NamespaceInit = Exclude<MessageInitShape<typeof NamespaceRequestSchema>, NamespaceRequest>;
const ns = (over: NamespaceInit = {}): NamespaceRequest =>
  create(NamespaceRequestSchema, { namespace: 'orders', team: 'commerce', ...over });

const NAMESPACES: Record<string, NamespaceRequest> = {
  'no access block (owning team only)': ns(),
  'owners and every kind of consumer grant': ns({
    access: {
      owners: [{ team: 'commerce' }, { team: 'platform' }],
      consumers: [
        { subject: 'group:billing', permissions: [Permission.READ] },
        { subject: 'group:writers', permissions: [Permission.WRITE] },
        { subject: 'group:ops', permissions: [Permission.READ, Permission.ADMIN] },
        { subject: 'user:carol@example.com', permissions: [Permission.WRITE, Permission.READ] },
        { subject: 'user:u-dave', permissions: [Permission.ADMIN] },
        { subject: 'group:"quoted\\name"', permissions: [Permission.READ] },
        { subject: 'robot:r2', permissions: [Permission.READ] },
        { subject: 'group:', permissions: [Permission.READ] },
        { subject: 'group:nothing', permissions: [Permission.UNSPECIFIED] },
      ],
    },
  }),
  'an access block without owners (nobody owns it)': ns({
    access: { consumers: [{ subject: 'group:billing', permissions: [Permission.READ] }] },
  }),
  'an empty team and an empty owner': ns({ team: '', access: { owners: [{ team: '' }] } }),
};

const PRINCIPALS: Record<string, Principal> = {
  'owner by team': { subject: 'u-1', groups: ['commerce'] },
  'second owner team': { subject: 'u-2', groups: ['platform', 'other'] },
  'reader group': { subject: 'u-3', groups: ['billing'] },
  'writer group': { subject: 'u-4', groups: ['writers'] },
  'read+admin group': { subject: 'u-5', groups: ['ops'] },
  'user by email': { subject: 'u-6', email: 'carol@example.com', groups: [] },
  'user by subject': { subject: 'u-dave', groups: [] },
  'email equal to another user subject': { subject: 'x', email: 'u-dave', groups: [] },
  'group with quotes': { subject: 'u-7', groups: ['"quoted\\name'] },
  'group named like a subject kind': { subject: 'u-8', groups: ['robot:r2', 'r2'] },
  nobody: { subject: 'u-9', groups: [] },
  'empty group name': { subject: 'u-10', groups: [''] },
  'user subject that looks like email of carol': { subject: 'carol@example.com', groups: [] },
};

const asPolicyPrincipal = (p: Principal): PolicyPrincipal => ({
  subject: p.subject,
  email: p.email,
  tenant: '',
  groups: p.groups,
  scopes: [],
  claims: {},
});

describe('the default policy set for namespaces', () => {
  for (const [nsName, namespace] of Object.entries(NAMESPACES)) {
    it(`decides as the owners/consumers rule did: ${nsName}`, () => {
      const set = new CompiledPolicySet(defaultNamespacePolicies(namespace));
      const table: string[] = [];
      const expected: string[] = [];
      for (const [who, principal] of Object.entries(PRINCIPALS)) {
        const granted = grantedActions(namespace, principal);
        const calls = [
          ...DATA_METHODS.map((method) => [method, undefined] as const),
          ...MAILBOX_METHODS.map((method) => [method, 'mailbox'] as const),
        ];
        for (const [method, patternType] of calls) {
          const action = dataActionOf(method, patternType);
          const decision = set.evaluate(
            action,
            asPolicyPrincipal(principal),
            { kind: action.resource, namespace: namespace.namespace, pattern: 'p', key: 'k', topic: 't' },
            { now: new Date() },
          );
          const call = patternType ? `${patternType} ${method}` : method;
          table.push(`${who} ${call} ${decision.allowed ? 'allow' : 'deny'}`);
          expected.push(`${who} ${call} ${granted.has(actionOf(method)) ? 'allow' : 'deny'}`);
        }
      }
      expect(table).toEqual(expected);
      expect(table.some((row) => row.endsWith('allow'))).toBe(nsName !== 'an empty team and an empty owner');
    });
  }
});

describe('the default policy set for the control plane', () => {
  const identity = (groups: string[], scopes: string[] = []) => ({
    subject: 's',
    groups,
    tenant: '',
    issuer: 'https://idp.example',
    scopes,
  });
  const base: AdminAuthOptions = {
    issuer: 'https://idp.example',
    audiences: ['prism'],
    adminGroups: ['prism-admins'],
    readerGroups: ['analytics'],
    proxyGroups: ['prism-proxies'],
  };
  const methods = [
    'GetNamespace',
    'ListNamespaces',
    'ExportNamespace',
    'GetNamespaceHistory',
    'ApplyNamespace',
    'DeleteNamespace',
    'RegisterProxy',
    'Heartbeat',
    'GetLatestSchema',
    'DropEverything',
  ];
  const callers = [
    identity(['prism-admins']),
    identity(['analytics']),
    identity(['prism-proxies']),
    identity(['commerce']),
    identity([], ['prism:read']),
    identity([], ['prism:write']),
    identity([], ['prism:proxy']),
    identity(['analytics'], ['prism:write']),
  ];
  for (const scopeMapping of [false, true]) {
    it(`decides as the group and scope rule did (scope mapping ${scopeMapping ? 'on' : 'off'})`, () => {
      const options = { ...base, scopeMapping };
      const set = new CompiledPolicySet(defaultControlPlanePolicies(options));
      const rows: string[] = [];
      const expected: string[] = [];
      callers.forEach((caller, i) => {
        const granted = adminGrants(caller, options);
        for (const method of methods) {
          const action = controlActionOf(method);
          const decision = set.evaluate(
            action,
            { subject: caller.subject, tenant: '', groups: caller.groups, scopes: caller.scopes, claims: {} },
            { kind: action.resource, namespace: 'orders' },
            { now: new Date() },
          );
          rows.push(`${i} ${method} ${decision.allowed}`);
          expected.push(`${i} ${method} ${granted.has(adminActionOf(method))}`);
        }
      });
      expect(rows).toEqual(expected);
    });
  }
});
