import { create } from '@bufbuild/protobuf';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultCatalog, type BackendCatalog } from '../../../src/admin/catalog.js';
import { ControlPlane, InvalidNamespaceError } from '../../../src/admin/control-plane.js';
import { openStore } from '../../../src/admin/open-store.js';
import { partitionOf } from '../../../src/admin/partition.js';
import { VersionConflictError, type NamespaceStore } from '../../../src/admin/store.js';
import { validateSources } from '../../../src/config/validate.js';
import {
  ApplyOutcome,
  ApplyNamespaceRequestSchema,
} from '../../../src/gen/prism/admin/v1/control_plane_pb.js';
import type { NamespaceRequest } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { toYaml, validNamespace } from '../../support/factories.js';

function request(overrides: Record<string, unknown> = {}): NamespaceRequest {
  const text = toYaml(validNamespace(overrides));
  const { loaded } = validateSources([{ file: 'ns.yaml', text }]);
  return loaded[0]!.request;
}

function apply(
  cp: ControlPlane,
  ns: NamespaceRequest,
  extra: { dryRun?: boolean; expectedVersion?: bigint } = {},
  who = 'alice',
) {
  return cp.apply(create(ApplyNamespaceRequestSchema, { namespace: ns, source: 'ns.yaml', ...extra }), who);
}

describe('ControlPlane', () => {
  let store: NamespaceStore;
  let now: number;
  let cp: ControlPlane;
  const make = (catalog: BackendCatalog = defaultCatalog()) =>
    new ControlPlane({ store, catalog, heartbeatIntervalMs: 1000, missedHeartbeats: 3, now: () => now });

  beforeEach(async () => {
    store = await openStore(join(mkdtempSync(join(tmpdir(), 'prism-cp-')), 'admin.db'));
    now = 1_700_000_000_000;
    cp = make();
  });
  afterEach(async () => store.close());

  it('creates a namespace at version 1 with its partition and slot bindings', async () => {
    const res = await apply(cp, request());
    expect(res.outcome).toBe(ApplyOutcome.CREATED);
    const a = res.assignment!;
    expect(Number(a.version)).toBe(1);
    expect(a.partition).toBe(partitionOf(a.namespace));
    expect(
      a.patterns.flatMap((p) => p.slots.map((s) => `${p.name}.${s.slot}=${s.backend}@${s.endpoint}`)),
    ).toEqual(['cache.store=redis@redis://localhost:6379']);
  });

  it('reports an unchanged re-apply without bumping the version or writing an audit entry', async () => {
    const ns = request();
    await apply(cp, ns);
    const again = await apply(cp, ns);
    expect(again.outcome).toBe(ApplyOutcome.UNCHANGED);
    expect(Number(again.assignment!.version)).toBe(1);
    expect((await cp.history(ns.namespace)).map((e) => e.action)).toEqual(['create']);
  });

  it('bumps the version on a change and records who changed what', async () => {
    await apply(cp, request());
    const res = await apply(cp, request({ description: 'changed' }), {}, 'bob');
    expect(res.outcome).toBe(ApplyOutcome.UPDATED);
    expect(Number(res.assignment!.version)).toBe(2);
    const [, update] = await cp.history(res.assignment!.namespace);
    expect(update!.action).toBe('update');
    expect(update!.principal).toBe('bob');
    expect([Number(update!.versionBefore), Number(update!.versionAfter)]).toEqual([1, 2]);
    expect(update!.diff).toContain('+description: changed');
  });

  it('rejects a stale expected_version with a conflict naming who changed it', async () => {
    await apply(cp, request(), {}, 'alice');
    await apply(cp, request({ description: 'v2' }), {}, 'carol');
    const stale = apply(cp, request({ description: 'v3' }), { expectedVersion: 1n });
    await expect(stale).rejects.toBeInstanceOf(VersionConflictError);
    await expect(stale).rejects.toThrow(/at version 2, not 1 \(last changed by carol\)/);
  });

  it('runs the whole pipeline on a dry run but stores nothing', async () => {
    const ns = request();
    const res = await apply(cp, ns, { dryRun: true });
    expect(res.outcome).toBe(ApplyOutcome.CREATED);
    expect(res.dryRun).toBe(true);
    expect(await store.get(ns.namespace)).toBeUndefined();
  });

  it('refuses an invalid namespace with the validator’s diagnostics', async () => {
    const bad = request();
    bad.patterns[0]!.slots.store!.backend = 'kafka';
    const err = await apply(cp, bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidNamespaceError);
    expect((err as InvalidNamespaceError).diagnostics.map((d) => d.rule)).toEqual(['E_BACKEND_CAPABILITY']);
  });

  it('assigns a durable backend to a slot without one when durability is strong', async () => {
    const ns = request({
      needs: { durability: 'strong' },
      patterns: [{ name: 'cache', type: 'keyvalue', slots: { store: {} } }],
    });
    const res = await apply(cp, ns);
    expect(res.assignment!.patterns[0]!.slots[0]!.backend).toBe('redis');
  });

  it('fails with E_BACKEND_UNAVAILABLE when the catalog has no instance of the bound backend', async () => {
    const only = make({
      postgres: [{ name: 'pg', backend: 'postgres', endpoint: 'postgres://db:5432/prism' }],
    });
    await expect(apply(only, request())).rejects.toMatchObject({ code: 'E_BACKEND_UNAVAILABLE' });
  });

  it('derives a Vault credential path per namespace, pattern and slot for session-aware patterns', async () => {
    const ns = request({
      auth: {
        enabled: true,
        issuer: 'http://localhost:5556/dex',
        audiences: ['prismctl'],
        vault: { enabled: true, address: 'http://localhost:8200', role: 'prism-x' },
      },
      patterns: [
        { name: 'cache', type: 'keyvalue', slots: { store: { backend: 'redis' } } },
        { name: 'sessions', type: 'session-manager', slots: { store: { backend: 'redis' } } },
      ],
    });
    const res = await apply(cp, ns);
    const [cache, sessions] = res.assignment!.patterns;
    expect(cache!.sessionAware).toBe(true);
    expect(cache!.slots[0]!.credentialRef).toBe('vault://database/creds/prism-x-cache-store');
    expect(sessions!.sessionAware).toBe(false);
    expect(sessions!.slots[0]!.credentialRef).toBe('');
  });

  it('exports the stored declaration in canonical form', async () => {
    const ns = request();
    await apply(cp, ns);
    const exported = await cp.export(ns.namespace);
    expect(exported.patterns[0]!.version).toBe('v1');
    expect(parse(toYaml(validNamespace())).namespace).toBe(exported.namespace);
  });

  it('deletes, keeps the history, and then reports the namespace missing', async () => {
    const ns = request();
    await apply(cp, ns);
    expect(await cp.delete(ns.namespace, undefined, 'alice')).toBe(1);
    await expect(cp.get(ns.namespace)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect((await cp.history(ns.namespace)).map((e) => e.action)).toEqual(['create', 'delete']);
    await expect(cp.delete(ns.namespace, undefined, 'alice')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });

  describe('proxies and heartbeats', () => {
    it('gives a proxy the namespaces of its partitions and says when the set changed', async () => {
      const ns = request();
      await apply(cp, ns);
      await cp.registerProxy('p1', '127.0.0.1:50090', 'test');
      const first = await cp.heartbeat('p1', '');
      expect(first.changed).toBe(true);
      expect(first.namespaces.map((o) => o.namespace!.namespace)).toEqual([ns.namespace]);
      const second = await cp.heartbeat('p1', first.fingerprint);
      expect(second.changed).toBe(false);
      expect(second.namespaces).toEqual([]);
      await apply(cp, request({ description: 'new' }));
      expect((await cp.heartbeat('p1', first.fingerprint)).changed).toBe(true);
    });

    it('moves partitions away from a proxy that missed its heartbeats', async () => {
      const names = Array.from({ length: 12 }, (_, i) => `team-ns-${i}`);
      for (const name of names) await apply(cp, request({ namespace: name }));
      await cp.registerProxy('p1', 'a', 't');
      await cp.registerProxy('p2', 'b', 't');
      const owned = async (id: string) =>
        (await cp.heartbeat(id, '')).namespaces.map((o) => o.namespace!.namespace);
      const split = [...(await owned('p1')), ...(await owned('p2'))].sort();
      expect(split).toEqual([...names].sort());
      now += 5000; // p2 is silent for more than 3 intervals of 1 s
      expect((await owned('p1')).sort()).toEqual([...names].sort());
      expect((await cp.get(names[0]!)).assignment.ownerProxy).toBe('p1');
    });

    it('sends every proxy the route table of all namespaces, with owner ids and addresses', async () => {
      const names = Array.from({ length: 8 }, (_, i) => `route-ns-${i}`); // single digits: sorted by name
      for (const name of names) await apply(cp, request({ namespace: name }));
      await cp.registerProxy('p1', '10.0.0.1:50090', 't');
      await cp.registerProxy('p2', '10.0.0.2:50090', 't');
      await cp.heartbeat('p1', '');
      const res = await cp.heartbeat('p2', '');
      expect(res.routesChanged).toBe(true);
      expect(res.routes.map((r) => r.namespace)).toEqual(names);
      for (const route of res.routes) {
        expect(route.partition).toBe(partitionOf(route.namespace));
        expect(route.ownerProxy).toBe((await cp.get(route.namespace)).assignment.ownerProxy);
        expect(route.ownerAddress).toBe(route.ownerProxy === 'p1' ? '10.0.0.1:50090' : '10.0.0.2:50090');
        expect(Number(route.version)).toBe(1);
      }
      const again = await cp.heartbeat('p2', res.fingerprint, {
        knownRoutesFingerprint: res.routesFingerprint,
      });
      expect(again.routesChanged).toBe(false);
      expect(again.routes).toEqual([]);
    });

    it('moves the partitions of a leaving proxy to the live ones at once', async () => {
      const names = Array.from({ length: 12 }, (_, i) => `leave-ns-${i}`);
      for (const name of names) await apply(cp, request({ namespace: name }));
      await cp.registerProxy('p1', 'a', 't');
      await cp.registerProxy('p2', 'b', 't');
      expect((await cp.heartbeat('p2', '')).namespaces.length).toBeGreaterThan(0);
      const leaving = await cp.heartbeat('p2', '', { leaving: true });
      expect(leaving.namespaces).toEqual([]);
      expect(new Set(leaving.routes.map((r) => r.ownerProxy))).toEqual(new Set(['p1']));
      expect((await cp.heartbeat('p1', '')).namespaces.map((o) => o.namespace!.namespace).sort()).toEqual(
        [...names].sort(),
      );
      expect((await cp.proxies()).find((p) => p.proxyId === 'p2')?.live).toBe(false);
    });

    it('leaves a route without owner while no proxy is live', async () => {
      await apply(cp, request({ namespace: 'lonely-ns' }));
      await cp.registerProxy('p1', 'a', 't');
      const res = await cp.heartbeat('p1', '', { leaving: true });
      expect(res.routes.map((r) => [r.namespace, r.ownerProxy, r.ownerAddress])).toEqual([
        ['lonely-ns', '', ''],
      ]);
    });

    it('refuses a heartbeat from a proxy that never registered', async () => {
      await expect(cp.heartbeat('ghost', '')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    });
  });
});
