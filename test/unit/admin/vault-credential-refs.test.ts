import { describe, expect, it } from 'vitest';
import { assignNamespace, derivedDatabaseRole, vaultLoginRole } from '../../../src/admin/assign.js';
import { defaultCatalog } from '../../../src/admin/catalog.js';
import type { NamespaceRequest } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import {
  check,
  consumerPattern,
  keyvaluePattern,
  producerPattern,
  sessionNamespace,
  validNamespace,
} from '../../support/factories.js';

/** The one namespace of a valid file. */
function loaded(ns: Record<string, unknown>): NamespaceRequest {
  const { report, loaded: found } = check(ns);
  expect(report.errors).toBe(0);
  return found[0]!.request;
}

/** pattern.slot → credential reference, for every slot the control plane assigns. */
function refs(ns: NamespaceRequest, catalog = defaultCatalog()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pattern of assignNamespace(ns, catalog).patterns)
    for (const slot of pattern.slots) out[`${pattern.name}.${slot.slot}`] = slot.credentialRef;
  return out;
}

describe('credential references the control plane derives', () => {
  it('derives database/creds only for the postgres and redis slots of session-aware patterns', () => {
    const ns = loaded(
      sessionNamespace([
        keyvaluePattern(),
        producerPattern({
          slots: { sink: { backend: 'kafka' }, state: { backend: 'redis' } },
          settings: { topic: 'orders.events', dedup_window: '5m' },
        }),
        consumerPattern({
          slots: {
            source: { backend: 'nats' },
            state: { backend: 'postgres' },
            'dead-letter': { backend: 'kafka' },
          },
        }),
      ]),
    );
    expect(refs(ns)).toEqual({
      'cache.store': 'vault://database/creds/prism-orders-cache-store',
      'events.sink': '',
      'events.state': 'vault://database/creds/prism-orders-events-state',
      'billing.dead-letter': '',
      'billing.source': '',
      'billing.state': 'vault://database/creds/prism-orders-billing-state',
      'sessions.store': '',
    });
  });

  it('names roles after the login role, which defaults to prism-<namespace>', () => {
    const named = loaded(sessionNamespace());
    expect(vaultLoginRole(named)).toBe('prism-orders');
    expect(derivedDatabaseRole(named, 'cache', 'store')).toBe('prism-orders-cache-store');
    const unnamed = loaded(sessionNamespace());
    unnamed.auth!.vault!.role = '';
    expect(derivedDatabaseRole(unnamed, 'cache', 'store')).toBe('prism-orders-cache-store');
    unnamed.auth!.vault!.role = 'shop';
    expect(derivedDatabaseRole(unnamed, 'cache', 'store')).toBe('shop-cache-store');
  });

  it('keeps an explicit reference and derives none without Vault', () => {
    const explicit = loaded(
      sessionNamespace([
        keyvaluePattern({
          slots: { store: { backend: 'postgres', credentials: 'vault://database/creds/ledger' } },
        }),
      ]),
    );
    expect(refs(explicit)['cache.store']).toBe('vault://database/creds/ledger');
    expect(refs(loaded(validNamespace()))).toEqual({ 'cache.store': '' });
  });

  it('never picks a broker for a slot with a Vault reference and no backend', () => {
    const producer = (sink: Record<string, string>) =>
      loaded(validNamespace({ patterns: [producerPattern({ slots: { sink } })] }));
    const brokers = { kafka: defaultCatalog().kafka!, nats: defaultCatalog().nats! };
    const plain = assignNamespace(producer({}), brokers).patterns[0]!.slots[0]!;
    expect(plain.backend).toBe('kafka');
    const withVault = producer({ credentials: 'vault://database/creds/events' });
    expect(() => assignNamespace(withVault, brokers)).toThrow(
      'no backend in the catalog can fill slot events.sink with credentials Vault can issue (postgres and redis)',
    );
    const sink = assignNamespace(withVault, { ...brokers, postgres: defaultCatalog().postgres! }).patterns[0]!
      .slots[0]!;
    expect([sink.backend, sink.credentialRef]).toEqual(['postgres', 'vault://database/creds/events']);
  });
});
