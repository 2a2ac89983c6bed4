import { create } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { NamespaceRouteSchema } from '../../../src/gen/prism/admin/v1/control_plane_pb.js';
import { FORWARDED_BY_HEADER, RouteTable } from '../../../src/proxy/routes.js';

/** The routing table of docs/fleet.md, for a call this proxy ("p1") does not serve. */
describe('RouteTable', () => {
  const table = new RouteTable('p1');
  table.update([
    create(NamespaceRouteSchema, { namespace: 'orders', ownerProxy: 'p2', ownerAddress: '10.0.0.2:50090' }),
    create(NamespaceRouteSchema, { namespace: 'moving', ownerProxy: 'p1', ownerAddress: '10.0.0.1:50090' }),
    create(NamespaceRouteSchema, { namespace: 'orphan', ownerProxy: '', ownerAddress: '' }),
  ]);
  const metadata = (forwardedBy?: string) => {
    const md = new Metadata();
    if (forwardedBy) md.set(FORWARDED_BY_HEADER, forwardedBy);
    return md;
  };

  it('forwards a call for a namespace another proxy owns to its address', () => {
    expect(table.decide('orders', metadata())).toEqual({
      kind: 'forward',
      owner: 'p2',
      address: '10.0.0.2:50090',
    });
  });

  it('never forwards a call another proxy already forwarded, and calls it moving', () => {
    expect(table.decide('orders', metadata('p3'))).toEqual({ kind: 'local' });
    expect(table.notServed('orders', metadata('p3'))).toMatchObject({
      code: 'E_UNAVAILABLE',
      message:
        "namespace 'orders' was forwarded here by proxy 'p3' but is not served here (its partition is moving)",
    });
  });

  it('answers UNAVAILABLE for a namespace moving to this proxy, or with no live owner', () => {
    expect(table.decide('moving', metadata())).toEqual({ kind: 'local' });
    expect(table.notServed('moving', metadata())?.message).toBe(
      "namespace 'moving' is not served now: it is moving to this proxy and not served yet",
    );
    expect(table.notServed('orphan', metadata())?.message).toBe(
      "namespace 'orphan' is not served now: no proxy is live to serve it",
    );
    expect(table.notServed('orphan', metadata())?.code).toBe('E_UNAVAILABLE');
  });

  it('leaves a namespace missing from the table to NOT_FOUND', () => {
    expect(table.decide('unknown', metadata())).toEqual({ kind: 'local' });
    expect(table.notServed('unknown', metadata())).toBeUndefined();
  });

  it('answers UNAVAILABLE, not NOT_FOUND, before the admin sent the first table', () => {
    const fresh = new RouteTable('p1');
    expect(fresh.notServed('orders', metadata())).toMatchObject({
      code: 'E_UNAVAILABLE',
      message: "namespace 'orders' is not served here and this proxy has no route table from the admin yet",
    });
    fresh.update([]);
    expect(fresh.notServed('orders', metadata())).toBeUndefined();
  });

  it('lists the owner addresses, for closing channels to proxies that left', () => {
    expect(table.addresses()).toEqual(new Set(['10.0.0.2:50090', '10.0.0.1:50090']));
  });
});
