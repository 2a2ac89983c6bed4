/**
 * A runner whose pattern sets `encryption` is built only where its data keys can come from Vault:
 * never a runner that would send in clear.
 */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  NamespaceRequestSchema,
  PatternAssignmentSchema,
  PatternSchema,
  PatternSettingsSchema,
  SlotAssignmentSchema,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { createRunner } from '../../../src/runners/create-runner.js';
import type { VaultAccess } from '../../../src/auth/vault-transit.js';

function build(options: { vault?: VaultAccess; vaultEnabled: boolean; encryption: Record<string, string> }) {
  const ns = create(NamespaceRequestSchema, {
    namespace: 'orders',
    team: 'test',
    auth: { vault: { enabled: options.vaultEnabled, address: 'http://127.0.0.1:1', role: 'prism-orders' } },
    patterns: [
      create(PatternSchema, {
        name: 'events',
        type: 'producer',
        settings: create(PatternSettingsSchema, {
          topic: 'orders.events',
          encryption: { key: 'transit/orders', ...options.encryption },
        }),
      }),
    ],
  });
  const assignment = create(PatternAssignmentSchema, {
    name: 'events',
    type: 'producer',
    slots: [create(SlotAssignmentSchema, { slot: 'sink', backend: 'memstore', endpoint: 'memory://' })],
  });
  return () => createRunner(ns, 'events', assignment, options.vault ? { vault: options.vault } : {});
}

const vault: VaultAccess = {
  session: () => Promise.reject(new Error('not called while building')),
  defaults: {},
};

describe('building an encrypting runner', () => {
  it('refuses in a process without Vault', () => {
    expect(build({ vaultEnabled: true, encryption: {} })).toThrow(
      'orders/events: encryption takes its data keys from Vault, and this process has no Vault configured',
    );
  });

  it("refuses when the namespace's auth.vault is off", () => {
    expect(build({ vault, vaultEnabled: false, encryption: {} })).toThrow(
      "orders/events: encryption takes its data keys from Vault, and the namespace's auth.vault is not enabled",
    );
  });

  it('refuses a malformed data_key_ttl, naming the setting', () => {
    expect(build({ vault, vaultEnabled: true, encryption: { dataKeyTtl: 'soon' } })).toThrow(
      'orders/events: setting encryption.data_key_ttl is "soon", expected a duration above 0 such as 5m',
    );
  });

  it('builds with Vault and a valid key, without calling Vault yet', () => {
    expect(build({ vault, vaultEnabled: true, encryption: { dataKeyTtl: '1m' } })()).toMatchObject({
      type: 'producer',
      pattern: 'events',
    });
  });
});
