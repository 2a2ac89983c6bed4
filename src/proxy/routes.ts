import type { Metadata } from '@grpc/grpc-js';
import type { NamespaceRoute } from '../gen/prism/admin/v1/control_plane_pb.js';
import { PrismError } from '../errors.js';
import { metadataValue } from '../transport/metadata.js';

/** Set on a call one proxy forwards to another, to the forwarding proxy's id; never forwarded twice. */
export const FORWARDED_BY_HEADER = 'x-prism-forwarded-by';

/** What to do with a call for a namespace: serve it here, or forward it to its owner. */
export type RouteDecision = { kind: 'local' } | { kind: 'forward'; owner: string; address: string };

/**
 * The fleet's route table as the admin last sent it (docs/fleet.md, Routing): which proxy owns
 * each namespace. Decides, for a call this proxy does not serve, between forwarding it one hop to
 * the owner, UNAVAILABLE (the namespace is moving) and NOT_FOUND (no such namespace).
 */
export class RouteTable {
  private routes = new Map<string, NamespaceRoute>();
  /** False until the admin sent the first table: then no namespace can be called unknown. */
  private received = false;

  /** This proxy's id (set once it knows its port when the id derives from it). */
  constructor(public selfId: string) {}

  /** Replaces the table with the admin's full list. */
  update(routes: readonly NamespaceRoute[]): void {
    this.routes = new Map(routes.map((r) => [r.namespace, r]));
    this.received = true;
  }

  /** Every owner address in the table (to close channels to proxies that left). */
  addresses(): Set<string> {
    return new Set([...this.routes.values()].map((r) => r.ownerAddress).filter(Boolean));
  }

  /** For a call for `name`, which this proxy does not serve. */
  decide(name: string, metadata: Metadata): RouteDecision {
    const route = this.routes.get(name);
    if (!route || metadataValue(metadata, FORWARDED_BY_HEADER) !== undefined) return { kind: 'local' };
    if (!route.ownerAddress || route.ownerProxy === this.selfId) return { kind: 'local' };
    return { kind: 'forward', owner: route.ownerProxy, address: route.ownerAddress };
  }

  /**
   * The error for a call this proxy neither serves nor forwards: UNAVAILABLE when the namespace
   * exists (in the table, or another proxy forwarded the call here), else undefined (NOT_FOUND).
   */
  notServed(name: string, metadata: Metadata): PrismError | undefined {
    const route = this.routes.get(name);
    const from = metadataValue(metadata, FORWARDED_BY_HEADER);
    if (from !== undefined) {
      return new PrismError(
        'E_UNAVAILABLE',
        `namespace '${name}' was forwarded here by proxy '${from}' but is not served here (its partition is moving)`,
        { hint: 'retry: the proxies learn the new owner within a heartbeat interval' },
      );
    }
    if (!route && !this.received) {
      return new PrismError(
        'E_UNAVAILABLE',
        `namespace '${name}' is not served here and this proxy has no route table from the admin yet`,
        { hint: 'retry: a proxy learns the route table with its first heartbeat' },
      );
    }
    if (!route) return undefined;
    const why =
      route.ownerProxy === ''
        ? 'no proxy is live to serve it'
        : route.ownerProxy === this.selfId
          ? 'it is moving to this proxy and not served yet'
          : `its owner '${route.ownerProxy}' has no address`;
    return new PrismError('E_UNAVAILABLE', `namespace '${name}' is not served now: ${why}`, {
      hint: 'retry: a moved partition is served again within the failover bound (docs/fleet.md)',
    });
  }
}
