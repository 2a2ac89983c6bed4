/**
 * The namespace's delivery guarantee (`needs.delivery`) and the capability of a messaging slot it
 * selects. Producers and consumers of one namespace read it from the same place, so on a backend
 * with both capabilities (redis: Streams and pub/sub) they meet on the same one.
 */
import type { AnyDriver } from '../drivers/interfaces.js';
import { Delivery, type NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';

export type DeliveryGuarantee = 'at-least-once' | 'at-most-once';

export function namespaceDelivery(ns: NamespaceRequest): DeliveryGuarantee {
  return ns.needs?.delivery === Delivery.AT_MOST_ONCE ? 'at-most-once' : 'at-least-once';
}

/**
 * at-least-once: `queue` when the driver has it, else `pubsub` (validation refuses that for a
 * consumer). at-most-once: `pubsub` when the driver has it, else `queue` (a stronger guarantee).
 */
export function messagingCapability(
  driver: AnyDriver,
  delivery: DeliveryGuarantee = 'at-least-once',
): 'queue' | 'pubsub' | undefined {
  const queue = driver.capabilities.has('queue');
  const pubsub = driver.capabilities.has('pubsub');
  if (delivery === 'at-most-once' && pubsub) return 'pubsub';
  if (queue) return 'queue';
  return pubsub ? 'pubsub' : undefined;
}
