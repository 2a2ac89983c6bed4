/**
 * When the Docker stack's admin and proxy count as ready for `dev up`: the admin when its
 * /healthz answers; the proxy when its /readyz answers 200 (not draining, every runner's backend
 * healthy) and it serves every namespace just applied. /readyz does not name the namespaces, so
 * those come from the proxy's `prism_proxy_namespace_served{namespace="..."} 1` series, parsed
 * as Prometheus exposition lines rather than searched as text.
 */
import { PrismError } from '../errors.js';
import { probeHttp, type Probe } from './health.js';
import { waitUntil } from './probes.js';
import { stackAlive, tailLog, type DevState } from './state.js';

const SERVED = 'prism_proxy_namespace_served';

/** The namespaces a proxy's metrics list as served (the series' value is 1). */
export function servedNamespaces(exposition: string): Set<string> {
  const served = new Set<string>();
  for (const line of exposition.split('\n')) {
    const sample = /^(\w+)\{(.*)\}\s+(\S+)/.exec(line.trim());
    if (!sample || sample[1] !== SERVED || Number(sample[3]) !== 1) continue;
    const namespace = labels(sample[2] as string).namespace;
    if (namespace !== undefined) served.add(namespace);
  }
  return served;
}

/** Label values of one sample, with the exposition format's escapes (\\, \", \n) undone. */
function labels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
    out[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return out;
}

/** The proxy at `proxyHttp` (its status HTTP base URL) is ready and serves every one of `names`. */
export async function proxyReadiness(
  proxyHttp: string,
  names: readonly string[],
  caFile?: string,
): Promise<Probe> {
  const ready = await probeHttp(`${proxyHttp}/readyz`, 1000, 200, caFile);
  if (!ready.healthy) return { healthy: false, detail: ready.detail || 'not ready' };
  const metrics = await probeHttp(`${proxyHttp}/metrics`, 1000, 1 << 20, caFile);
  if (!metrics.healthy) return { healthy: false, detail: metrics.detail.slice(0, 200) };
  const served = servedNamespaces(metrics.detail);
  const missing = names.filter((n) => !served.has(n));
  return missing.length === 0
    ? { healthy: true, detail: 'serving' }
    : { healthy: false, detail: `not serving ${missing.join(', ')} yet` };
}

/**
 * Polls `probe` until healthy, the deadline, or the supervisor's exit; throws E_UNAVAILABLE with
 * the last detail and the server's last log lines when it never became healthy.
 */
export async function waitReady(
  probe: () => Promise<Probe>,
  deadline: number,
  what: 'the admin' | 'the proxy',
  state: DevState,
): Promise<void> {
  const last = await waitUntil(
    probe,
    deadline,
    async () => (stackAlive(state.pid) ? undefined : 'its supervisor exited'),
    100,
  );
  if (last.healthy) return;
  const docker = state.docker!;
  const logs = tailLog(what === 'the admin' ? docker.logFiles.admin : docker.logFiles.proxy, 10);
  throw new PrismError(
    'E_UNAVAILABLE',
    `${what} was not ready: ${last.detail}${logs ? `\nIts last log lines:\n${logs}` : ''}`,
    { hint: `logs: ${docker.logFiles.admin}, ${docker.logFiles.proxy}` },
  );
}
