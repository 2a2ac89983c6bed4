import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { actionOf, authorize, grantedActions, type Principal } from '../../../src/auth/authorize.js';
import {
  AccessSchema,
  GrantSchema,
  NamespaceRequestSchema,
  OwnerSchema,
  Permission,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';

const orders = create(NamespaceRequestSchema, {
  namespace: 'orders',
  team: 'commerce',
  access: create(AccessSchema, {
    owners: [create(OwnerSchema, { team: 'commerce' })],
    consumers: [
      create(GrantSchema, { subject: 'group:analytics', permissions: [Permission.READ] }),
      create(GrantSchema, {
        subject: 'user:carol@example.com',
        permissions: [Permission.READ, Permission.WRITE],
      }),
      create(GrantSchema, { subject: 'user:svc-42', permissions: [Permission.WRITE] }),
    ],
  }),
});
const noAccessBlock = create(NamespaceRequestSchema, { namespace: 'cache', team: 'commerce' });

const person = (subject: string, groups: string[] = [], email?: string): Principal => ({
  subject,
  groups,
  email,
});
const actions = (ns = orders, who: Principal) => [...grantedActions(ns, who)].sort();

describe('actionOf', () => {
  it.each(['Get', 'Exists', 'Scan', 'GetTtl', 'BatchGet', 'Subscribe', 'Acknowledge', 'Consume'])(
    '%s is a read',
    (m) => expect(actionOf(m)).toBe('read'),
  );
  it.each([
    'Set',
    'Delete',
    'Expire',
    'Persist',
    'BatchSet',
    'BatchDelete',
    'Publish',
    'PublishBatch',
    'PublishStream',
  ])('%s is a write', (m) => expect(actionOf(m)).toBe('write'));
  it('treats an unknown method as admin, so only owners may call it', () =>
    expect(actionOf('Flush')).toBe('admin'));
});

describe('grantedActions', () => {
  it('gives members of an owning team read, write and admin', () =>
    expect(actions(orders, person('alice', ['commerce']))).toEqual(['admin', 'read', 'write']));
  it('gives a group consumer the listed permissions only', () =>
    expect(actions(orders, person('bob', ['analytics']))).toEqual(['read']));
  it('matches user:<email>', () =>
    expect(actions(orders, person('c-123', [], 'carol@example.com'))).toEqual(['read', 'write']));
  it('matches user:<sub>', () => expect(actions(orders, person('svc-42'))).toEqual(['write']));
  it('gives nothing to a stranger', () => expect(actions(orders, person('mallory', ['sales']))).toEqual([]));
  it('does not treat a group name as a user or a user name as a group', () => {
    expect(actions(orders, person('analytics'))).toEqual([]);
    expect(actions(orders, person('x', ['svc-42', 'carol@example.com']))).toEqual([]);
  });
  it('admits only the owning team without an access block', () => {
    expect(actions(noAccessBlock, person('alice', ['commerce']))).toEqual(['admin', 'read', 'write']);
    expect(actions(noAccessBlock, person('bob', ['analytics']))).toEqual([]);
  });
});

describe('authorize', () => {
  it('lets a reader Get and refuses Set with E_PERMISSION_DENIED', () => {
    const bob = person('bob', ['analytics']);
    expect(() => authorize(orders, bob, 'Get')).not.toThrow();
    expect(() => authorize(orders, bob, 'Set')).toThrow(
      expect.objectContaining({
        code: 'E_PERMISSION_DENIED',
        message: "bob may not write namespace 'orders' (Set)",
      }),
    );
  });
});
