import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  NamespaceKpisSchema,
  ProxyKpisSchema,
  type ProxyKpis,
} from '../../../src/gen/prism/admin/v1/control_plane_pb.js';
import { KpiBoard, quantileMs } from '../../../src/console/kpi-board.js';
import { KPI_LATENCY_BOUNDS, ProxyKpiRecorder } from '../../../src/proxy/kpis.js';

const BOUNDS = [...KPI_LATENCY_BOUNDS];

/** A report: `calls` by status and latency bucket counts per namespace, cumulative. */
function report(
  atMs: number,
  namespaces: Record<string, { calls: Record<string, number>; buckets?: number[]; inFlight?: number }>,
  extra: { startedAtMs?: number; inFlight?: number; subscriptions?: number } = {},
): ProxyKpis {
  return create(ProxyKpisSchema, {
    startedAtMs: BigInt(extra.startedAtMs ?? 1000),
    atMs: BigInt(atMs),
    inFlight: extra.inFlight ?? 0,
    subscriptions: extra.subscriptions ?? 0,
    latencyBoundsSeconds: BOUNDS,
    namespaces: Object.entries(namespaces).map(([namespace, n]) =>
      create(NamespaceKpisSchema, {
        namespace,
        callsByStatus: Object.fromEntries(Object.entries(n.calls).map(([k, v]) => [k, BigInt(v)])),
        latencyBuckets: (n.buckets ?? new Array<number>(BOUNDS.length + 1).fill(0)).map(BigInt),
        inFlight: n.inFlight ?? 0,
      }),
    ),
  });
}

describe('the console KPI board', () => {
  let clock = 100_000;
  const board = () => new KpiBoard(6000, () => clock);

  it('turns two cumulative reports into requests/s and error ratios by status', () => {
    const b = board();
    b.record('p1', report(10_000, { orders: { calls: { OK: 100, NOT_FOUND: 10 } } }));
    expect(b.namespace('orders')).toMatchObject({ requestsPerSecond: 0, calls: 0 });
    b.record('p1', report(12_000, { orders: { calls: { OK: 280, NOT_FOUND: 20, UNAVAILABLE: 10 } } }));
    const k = b.namespace('orders')!;
    expect(k.requestsPerSecond).toBe(100);
    expect(k.calls).toBe(200);
    expect(k.errorRatio).toBeCloseTo(0.1, 10);
    expect(k.errorsByStatus).toEqual([
      ['NOT_FOUND', 0.05],
      ['UNAVAILABLE', 0.05],
    ]);
  });

  it('adds up the proxies that report a namespace (a hand-over) and keeps per-proxy figures apart', () => {
    const b = board();
    b.record('p1', report(0, { orders: { calls: { OK: 0 } } }, { subscriptions: 3 }));
    b.record('p2', report(0, { orders: { calls: { OK: 0 } } }));
    b.record(
      'p1',
      report(1000, { orders: { calls: { OK: 30 }, inFlight: 2 } }, { inFlight: 2, subscriptions: 3 }),
    );
    b.record('p2', report(2000, { orders: { calls: { OK: 40 }, inFlight: 1 } }, { inFlight: 1 }));
    expect(b.namespace('orders')).toMatchObject({ requestsPerSecond: 50, inFlight: 3 });
    expect(b.proxy('p1')).toMatchObject({ requestsPerSecond: 30, inFlight: 2, subscriptions: 3 });
    expect(b.proxy('p2')).toMatchObject({ requestsPerSecond: 20, inFlight: 1, subscriptions: 0 });
  });

  it('starts a new window when the proxy restarted (its counters went back to zero)', () => {
    const b = board();
    b.record('p1', report(1000, { orders: { calls: { OK: 5000 } } }, { startedAtMs: 1 }));
    b.record('p1', report(2000, { orders: { calls: { OK: 10 } } }, { startedAtMs: 1500 }));
    expect(b.namespace('orders')).toMatchObject({ requestsPerSecond: 0 });
    b.record('p1', report(3000, { orders: { calls: { OK: 30 } } }, { startedAtMs: 1500 }));
    expect(b.namespace('orders')).toMatchObject({ requestsPerSecond: 20 });
    expect(b.startedAtMs('p1')).toBe(1500);
  });

  it('forgets a proxy whose last report is older than the stale window', () => {
    const b = board();
    b.record('p1', report(0, { orders: { calls: { OK: 0 } } }));
    b.record('p1', report(1000, { orders: { calls: { OK: 10 } } }));
    clock += 6001;
    expect(b.namespace('orders')).toBeUndefined();
    expect(b.proxy('p1')).toBeUndefined();
  });

  it('samples requests/s into a 60-point history per namespace and proxy', () => {
    const b = board();
    b.record('p1', report(0, { orders: { calls: { OK: 0 } } }));
    b.record('p1', report(1000, { orders: { calls: { OK: 7 } } }));
    for (let i = 0; i < 65; i++) b.sample();
    expect(b.history('namespace', 'orders')).toEqual(new Array<number>(60).fill(7));
    expect(b.history('proxy', 'p1')).toHaveLength(60);
    expect(b.history('namespace', 'unknown')).toEqual([]);
  });

  it('computes p50 and p99 from the latency buckets as histogram_quantile does', () => {
    // 100 calls: 50 in (0, 0.5 ms], 49 in (1, 2.5 ms], 1 in (0.5 s, 1 s].
    const buckets = [50, 0, 49, 0, 0, 0, 0, 0, 0, 1, 0];
    expect(quantileMs(0.5, buckets, BOUNDS)).toBeCloseTo(0.5, 10);
    expect(quantileMs(0.99, buckets, BOUNDS)).toBeCloseTo(2.5, 10);
    expect(quantileMs(0.999, buckets, BOUNDS)).toBeCloseTo(950, 6);
    expect(quantileMs(0.99, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4], BOUNDS)).toBe(1000);
    expect(quantileMs(0.5, new Array<number>(11).fill(0), BOUNDS)).toBeUndefined();
  });
});

describe('the proxy KPI recorder', () => {
  it('counts calls by gRPC status name and latency bucket, for every served namespace and no other', () => {
    const r = new ProxyKpiRecorder();
    r.begin('orders')('OK', 0.0004);
    r.begin('orders')('E_NOT_FOUND', 0.003);
    r.begin('orders')('E_BACKEND_DOWN', 2);
    const open = r.begin('orders');
    r.begin('typo')('E_NOT_FOUND', 0.001);
    const s = r.snapshot(['orders', 'quiet'], 4);
    expect(s.inFlight).toBe(1);
    expect(s.subscriptions).toBe(4);
    expect(s.latencyBoundsSeconds).toEqual(BOUNDS);
    expect(s.namespaces.map((n) => n.namespace)).toEqual(['orders', 'quiet']);
    expect(s.namespaces[1]!.callsByStatus).toEqual({});
    expect(s.namespaces[1]!.latencyBuckets).toEqual(new Array(11).fill(0n));
    const ns = s.namespaces[0]!;
    expect(ns.namespace).toBe('orders');
    expect(ns.callsByStatus).toEqual({ OK: 1n, NOT_FOUND: 1n, UNAVAILABLE: 1n });
    expect(ns.latencyBuckets).toEqual([1n, 0n, 0n, 1n, 0n, 0n, 0n, 0n, 0n, 0n, 1n]);
    expect(ns.inFlight).toBe(1);
    open('OK', 0.001);
    expect(r.snapshot([], 0).inFlight).toBe(0);
  });

  it('counts a namespace’s subscriptions while they are open, once per subscription', async () => {
    const r = new ProxyKpiRecorder();
    let closed = 0;
    const runner = {
      name: 'billing',
      subscribe: async (options: { topic: string }) => ({
        topic: options.topic,
        close: async () => void closed++,
      }),
    };
    const counted = r.countSubscriptions('orders', runner);
    expect(counted.name).toBe('billing');
    const first = await counted.subscribe({ topic: 't' });
    const second = await counted.subscribe({ topic: 'u' });
    expect(first.topic).toBe('t');
    expect(r.snapshot(['orders'], 2).namespaces[0]!.subscriptions).toBe(2);
    await first.close();
    await first.close();
    expect(r.snapshot(['orders'], 1).namespaces[0]!.subscriptions).toBe(1);
    await second.close();
    expect(r.snapshot(['orders'], 0).namespaces[0]!.subscriptions).toBe(0);
    expect(closed).toBe(3);
  });
});
