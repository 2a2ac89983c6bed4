import { create } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import {
  NamespaceKpisSchema,
  ProxyKpisSchema,
  type ProxyKpis,
} from '../gen/prism/admin/v1/control_plane_pb.js';
import { statusOf } from '../transport/grpc-status.js';
import type { PrismErrorCode } from '../errors.js';

/** Latency bucket bounds in seconds, the same as the proxy's Prometheus histogram. */
export const KPI_LATENCY_BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1] as const;

interface NamespaceCounters {
  calls: Map<string, number>;
  buckets: number[];
  inFlight: number;
  subscriptions: number;
}

/**
 * The compact traffic summary a proxy sends with each heartbeat (docs/console.md): cumulative
 * calls by gRPC status and latency buckets per namespace, and what is in flight now.
 */
export class ProxyKpiRecorder {
  private readonly namespaces = new Map<string, NamespaceCounters>();
  private inFlight = 0;
  readonly startedAtMs = Date.now();

  /** Marks a call of `namespace` as started; the returned function finishes it. */
  begin(namespace: string): (code: PrismErrorCode | 'OK', seconds: number) => void {
    const counters = this.counters(namespace);
    counters.inFlight++;
    this.inFlight++;
    return (code, seconds) => {
      counters.inFlight--;
      this.inFlight--;
      const name = code === 'OK' ? 'OK' : status[statusOf(code)];
      counters.calls.set(name, (counters.calls.get(name) ?? 0) + 1);
      let bucket = KPI_LATENCY_BOUNDS.findIndex((bound) => seconds <= bound);
      if (bucket < 0) bucket = KPI_LATENCY_BOUNDS.length;
      counters.buckets[bucket]!++;
    };
  }

  /** The same runner, whose subscriptions count as open for `namespace` until they close. */
  countSubscriptions<R extends object>(namespace: string, runner: R): R {
    const target = runner as R & { subscribe?: (...args: never[]) => Promise<{ close(): Promise<void> }> };
    const subscribe = target.subscribe;
    if (typeof subscribe !== 'function') return runner;
    const counters = this.counters(namespace);
    const counted: object = Object.assign(Object.create(runner) as object, {
      subscribe: async (...args: never[]) => {
        const subscription = await subscribe.apply(runner, args);
        counters.subscriptions++;
        let open = true;
        return Object.assign(Object.create(subscription) as typeof subscription, {
          close: async () => {
            if (open) {
              open = false;
              counters.subscriptions--;
            }
            await subscription.close();
          },
        });
      },
    });
    return counted as R;
  }

  /**
   * The summary now, for every namespace in `served` (with zeros when it had no call yet); calls
   * to names it does not serve are not reported.
   */
  snapshot(served: readonly string[], subscriptions: number): ProxyKpis {
    return create(ProxyKpisSchema, {
      startedAtMs: BigInt(this.startedAtMs),
      atMs: BigInt(Date.now()),
      inFlight: this.inFlight,
      subscriptions,
      latencyBoundsSeconds: [...KPI_LATENCY_BOUNDS],
      namespaces: served.map((namespace) => {
        const c = this.namespaces.get(namespace);
        return create(NamespaceKpisSchema, {
          namespace,
          callsByStatus: Object.fromEntries([...(c?.calls ?? [])].map(([k, v]) => [k, BigInt(v)])),
          latencyBuckets: (c?.buckets ?? new Array<number>(KPI_LATENCY_BOUNDS.length + 1).fill(0)).map(
            BigInt,
          ),
          inFlight: c?.inFlight ?? 0,
          subscriptions: c?.subscriptions ?? 0,
        });
      }),
    });
  }

  private counters(namespace: string): NamespaceCounters {
    let counters = this.namespaces.get(namespace);
    if (!counters) {
      counters = {
        calls: new Map(),
        buckets: new Array<number>(KPI_LATENCY_BOUNDS.length + 1).fill(0),
        inFlight: 0,
        subscriptions: 0,
      };
      // Bounded: names come from callers' headers; unknown names are counted but never reported.
      if (this.namespaces.size < 10_000) this.namespaces.set(namespace, counters);
    }
    return counters;
  }
}
