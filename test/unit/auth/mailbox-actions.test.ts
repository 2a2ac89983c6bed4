/** The Mailbox methods need what the contract says: read for Query, Get and Watch, write for Delete. */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { actionOf, authorize } from '../../../src/auth/authorize.js';
import {
  GrantSchema,
  NamespaceRequestSchema,
  Permission,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { Mailbox } from '../../../src/gen/prism/data/v1/mailbox_pb.js';

const orders = create(NamespaceRequestSchema, {
  namespace: 'orders',
  team: 'commerce',
  access: {
    owners: [{ team: 'commerce' }],
    consumers: [create(GrantSchema, { subject: 'group:support', permissions: [Permission.READ] })],
  },
});
const support = { subject: 'sam', groups: ['support'] };

describe('mailbox authorization', () => {
  it('maps every Mailbox method to read or write', () => {
    expect(Object.fromEntries(Mailbox.methods.map((m) => [m.name, actionOf(m.name)]))).toEqual({
      Query: 'read',
      Get: 'read',
      Delete: 'write',
      Watch: 'read',
    });
  });

  it('lets a reader query, get and watch, and refuses its delete', () => {
    for (const method of ['Query', 'Get', 'Watch'])
      expect(() => authorize(orders, support, method)).not.toThrow();
    expect(() => authorize(orders, support, 'Delete')).toThrow(
      "sam may not write namespace 'orders' (Delete)",
    );
  });
});
