import type { ProxyKpis } from '../gen/prism/admin/v1/control_plane_pb.js';

/** The figures the console shows for one namespace or one proxy, over the last reporting window. */
export interface Kpis {
  requestsPerSecond: number;
  /** Calls in the window. */
  calls: number;
  /** Non-OK calls ÷ all calls in the window (0 when there were none). */
  errorRatio: number;
  /** Non-OK gRPC status → share of all calls in the window, largest first. */
  errorsByStatus: Array<[status: string, ratio: number]>;
  /** Undefined without calls in the window. */
  p50Ms?: number;
  p99Ms?: number;
  inFlight: number;
  /** Subscriptions open now. */
  subscriptions?: number;
}

interface Window {
  seconds: number;
  calls: Map<string, number>;
  buckets: number[];
  bounds: number[];
}

interface ProxyState {
  last: ProxyKpis;
  receivedAtMs: number;
  /** Difference between the last two reports of the same process. */
  window?: Window;
  namespaces: Map<string, { window?: Window; inFlight: number; subscriptions: number }>;
}

const HISTORY = 60;

/**
 * What the proxies' heartbeats say about traffic (docs/console.md): keeps each proxy's last
 * report, turns two consecutive cumulative reports into a window, adds proxies up per namespace,
 * and samples requests/s once a second into 60-point histories for the charts.
 */
export class KpiBoard {
  private readonly proxies = new Map<string, ProxyState>();
  private readonly histories = new Map<string, number[]>();

  constructor(
    /** A proxy whose last report is older than this counts no more (it is lost). */
    private readonly staleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  record(proxyId: string, kpis: ProxyKpis): void {
    const previous = this.proxies.get(proxyId);
    const state: ProxyState = { last: kpis, receivedAtMs: this.now(), namespaces: new Map() };
    const sameProcess =
      previous !== undefined &&
      previous.last.startedAtMs === kpis.startedAtMs &&
      kpis.atMs > previous.last.atMs;
    const seconds = sameProcess ? Number(kpis.atMs - previous.last.atMs) / 1000 : 0;
    const bounds = kpis.latencyBoundsSeconds;
    const total: Window = {
      seconds,
      calls: new Map(),
      buckets: new Array<number>(bounds.length + 1).fill(0),
      bounds,
    };
    for (const ns of kpis.namespaces) {
      const before = sameProcess
        ? previous.last.namespaces.find((n) => n.namespace === ns.namespace)
        : undefined;
      let window: Window | undefined;
      if (sameProcess) {
        window = { seconds, calls: new Map(), buckets: [], bounds };
        for (const [status, count] of Object.entries(ns.callsByStatus)) {
          const delta = Number(count - (before?.callsByStatus[status] ?? 0n));
          if (delta > 0) window.calls.set(status, delta);
          total.calls.set(status, (total.calls.get(status) ?? 0) + Math.max(delta, 0));
        }
        window.buckets = ns.latencyBuckets.map((count, i) =>
          Math.max(Number(count - (before?.latencyBuckets[i] ?? 0n)), 0),
        );
        window.buckets.forEach((v, i) => (total.buckets[i] = (total.buckets[i] ?? 0) + v));
      }
      state.namespaces.set(ns.namespace, { window, inFlight: ns.inFlight, subscriptions: ns.subscriptions });
    }
    if (sameProcess) state.window = total;
    this.proxies.set(proxyId, state);
  }

  /** Figures of one namespace, summed over the proxies that report it; undefined when none does. */
  namespace(name: string): Kpis | undefined {
    const parts = this.fresh().flatMap(([, s]) => {
      const ns = s.namespaces.get(name);
      return ns ? [ns] : [];
    });
    if (parts.length === 0) return undefined;
    return {
      ...figures(
        parts.map((p) => p.window),
        parts.reduce((sum, p) => sum + p.inFlight, 0),
      ),
      subscriptions: parts.reduce((sum, p) => sum + p.subscriptions, 0),
    };
  }

  /** Figures of one proxy; undefined before its first report or when it is stale. */
  proxy(proxyId: string): Kpis | undefined {
    const state = this.fresh().find(([id]) => id === proxyId)?.[1];
    if (!state) return undefined;
    return { ...figures([state.window], state.last.inFlight), subscriptions: state.last.subscriptions };
  }

  /** When the proxy's process started, from its last report. */
  startedAtMs(proxyId: string): number | undefined {
    const state = this.proxies.get(proxyId);
    return state ? Number(state.last.startedAtMs) : undefined;
  }

  /** Adds the current requests/s of every namespace and proxy known to the histories. */
  sample(): void {
    const seen = new Set<string>();
    for (const [id, state] of this.proxies) {
      this.push(`proxy:${id}`, this.proxy(id)?.requestsPerSecond ?? 0);
      seen.add(`proxy:${id}`);
      for (const name of state.namespaces.keys()) {
        const key = `namespace:${name}`;
        if (seen.has(key)) continue;
        this.push(key, this.namespace(name)?.requestsPerSecond ?? 0);
        seen.add(key);
      }
    }
    for (const [key, samples] of this.histories) if (!seen.has(key)) this.pushTo(samples, 0);
  }

  /** The last (up to) 60 samples of requests/s, oldest first. */
  history(kind: 'namespace' | 'proxy', id: string): number[] {
    return [...(this.histories.get(`${kind}:${id}`) ?? [])];
  }

  forget(proxyId: string): void {
    this.proxies.delete(proxyId);
  }

  private fresh(): Array<[string, ProxyState]> {
    const since = this.now() - this.staleMs;
    return [...this.proxies].filter(([, s]) => s.receivedAtMs >= since);
  }

  private push(key: string, value: number): void {
    let samples = this.histories.get(key);
    if (!samples) this.histories.set(key, (samples = []));
    this.pushTo(samples, value);
  }

  private pushTo(samples: number[], value: number): void {
    samples.push(value);
    if (samples.length > HISTORY) samples.shift();
  }
}

function figures(windows: Array<Window | undefined>, inFlight: number): Kpis {
  const calls = new Map<string, number>();
  let buckets: number[] = [];
  let bounds: number[] = [];
  let rate = 0;
  for (const w of windows) {
    if (!w || w.seconds <= 0) continue;
    let n = 0;
    for (const [status, count] of w.calls) {
      calls.set(status, (calls.get(status) ?? 0) + count);
      n += count;
    }
    rate += n / w.seconds;
    if (buckets.length === 0) buckets = new Array<number>(w.buckets.length).fill(0);
    w.buckets.forEach((v, i) => (buckets[i] = (buckets[i] ?? 0) + v));
    bounds = w.bounds;
  }
  const total = [...calls.values()].reduce((a, b) => a + b, 0);
  const errorsByStatus = [...calls]
    .filter(([status]) => status !== 'OK')
    .map(([status, count]): [string, number] => [status, count / total])
    .sort((a, b) => b[1] - a[1]);
  return {
    requestsPerSecond: rate,
    calls: total,
    errorRatio: total > 0 ? errorsByStatus.reduce((sum, [, r]) => sum + r, 0) : 0,
    errorsByStatus,
    p50Ms: quantileMs(0.5, buckets, bounds),
    p99Ms: quantileMs(0.99, buckets, bounds),
    inFlight,
  };
}

/**
 * The q-quantile of a histogram in milliseconds, interpolated linearly inside its bucket as
 * Prometheus' histogram_quantile does; in the +Inf bucket, the largest finite bound.
 */
export function quantileMs(
  q: number,
  buckets: readonly number[],
  bounds: readonly number[],
): number | undefined {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < buckets.length; i++) {
    const count = buckets[i]!;
    if (below + count >= rank && count > 0) {
      if (i >= bounds.length) return bounds.at(-1)! * 1000;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i]!;
      return (lower + (upper - lower) * ((rank - below) / count)) * 1000;
    }
    below += count;
  }
  return bounds.at(-1)! * 1000;
}
