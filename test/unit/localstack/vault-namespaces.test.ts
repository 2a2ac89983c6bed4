import { describe, expect, it } from 'vitest';
import type { NamespaceRequest } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { redisAclRules, sessionPolicy, vaultNamespaces } from '../../../src/localstack/bootstrap.js';
import {
  check,
  keyvaluePattern,
  producerPattern,
  sessionManagerPattern,
  sessionNamespace,
  validNamespace,
} from '../../support/factories.js';

function loaded(...namespaces: Array<Record<string, unknown>>): NamespaceRequest[] {
  return namespaces.map((ns) => {
    const { report, loaded: found } = check(ns);
    expect(report.errors).toBe(0);
    return found[0]!.request;
  });
}

const STACK = ['redis', 'postgres', 'kafka', 'nats', 'dex', 'vault', 'memstore', 'sqlite'];

describe('the Vault roles dev up writes for the namespaces it serves', () => {
  it('lists the roles of Vault-enabled namespaces only, with their backends and login role', () => {
    const ns = loaded(
      sessionNamespace([
        keyvaluePattern(),
        producerPattern({
          slots: { sink: { backend: 'kafka' }, state: { backend: 'postgres' } },
          settings: { topic: 'orders.events', dedup_window: '5m' },
        }),
      ]),
      validNamespace({ namespace: 'plain' }),
    );
    expect(vaultNamespaces(ns, STACK)).toEqual([
      {
        namespace: 'orders',
        loginRole: 'prism-orders',
        audiences: ['prismctl'],
        databaseRoles: [
          { name: 'prism-orders-cache-store', backend: 'redis' },
          { name: 'prism-orders-events-state', backend: 'postgres' },
        ],
      },
    ]);
  });

  it('leaves out a namespace that needs a backend the stack does not run', () => {
    const ns = loaded(sessionNamespace([producerPattern()]));
    expect(vaultNamespaces(ns, ['redis', 'postgres', 'dex', 'vault'])).toEqual([]);
    expect(vaultNamespaces(ns, STACK).map((n) => n.databaseRoles)).toEqual([[]]);
  });

  it('follows the layer-4 choice for a slot without a backend, as the admin will', () => {
    const sessions = sessionManagerPattern({ slots: { store: { backend: 'memstore' } } });
    const ns = loaded(
      sessionNamespace([], { patterns: [keyvaluePattern({ slots: { store: {} } }), sessions] }),
    );
    expect(vaultNamespaces(ns, STACK)[0]!.databaseRoles).toEqual([
      { name: 'prism-orders-cache-store', backend: 'redis' },
    ]);
    expect(vaultNamespaces(ns, ['postgres', 'memstore'])[0]!.databaseRoles).toEqual([
      { name: 'prism-orders-cache-store', backend: 'postgres' },
    ]);
    expect(vaultNamespaces(ns, ['memstore'])[0]!.databaseRoles).toEqual([]);
  });

  it('grants a session exactly its roles, then lease and token upkeep', () => {
    expect(sessionPolicy(['b-role', 'a-role']).split('\n').slice(1)).toEqual([
      'path "database/creds/a-role" { capabilities = ["read"] }',
      'path "database/creds/b-role" { capabilities = ["read"] }',
      'path "sys/leases/renew" { capabilities = ["update"] }',
      'path "sys/leases/revoke" { capabilities = ["update"] }',
      'path "auth/token/renew-self" { capabilities = ["update"] }',
      'path "auth/token/revoke-self" { capabilities = ["update"] }',
      '',
    ]);
  });

  it("limits a Redis user to the namespace's keys, streams and channels", () => {
    expect(redisAclRules('orders')).toEqual([
      '~orders:*',
      '~prism/stream:orders:*',
      '&prism:orders:*',
      '+@all',
      '-@dangerous',
      '+info',
    ]);
  });
});
