import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { get as getHttps } from 'node:https';
import { withoutSystemCaAdvice } from '../transport/tls-message.js';
import { endpoints, type DevState } from './state.js';

export interface Probe {
  healthy: boolean;
  detail: string;
}

/**
 * GET `url`: healthy on 200; the body (up to `maxBody` characters, or the error) as detail. Never
 * throws. An https:// URL is checked against `caFile` (the local stack's CA).
 */
export function probeHttp(url: string, timeoutMs = 1000, maxBody = 200, caFile?: string): Promise<Probe> {
  return new Promise((resolve) => {
    let ca: Buffer | undefined;
    if (url.startsWith('https:') && caFile !== undefined) {
      try {
        ca = readFileSync(caFile);
      } catch (err) {
        resolve({ healthy: false, detail: `cannot read the CA file ${caFile}: ${(err as Error).message}` });
        return;
      }
    }
    const fetch = url.startsWith('https:') ? getHttps : get;
    const req = fetch(url, { timeout: timeoutMs, ...(ca ? { ca } : {}) }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () =>
        resolve({ healthy: res.statusCode === 200, detail: body.trim().slice(0, maxBody) }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ healthy: false, detail: withoutSystemCaAdvice(err.message) }));
  });
}

export interface StackHealth {
  admin: Probe;
  proxy: Probe;
  healthy: boolean;
}

/** The admin's /healthz and the proxy's /readyz. */
export async function stackHealth(state: Pick<DevState, 'host' | 'ports' | 'tls'>): Promise<StackHealth> {
  const e = endpoints(state);
  const ca = state.tls?.caFile;
  const [admin, proxy] = await Promise.all([
    probeHttp(`${e.adminHttp}/healthz`, 1000, 200, ca),
    probeHttp(`${e.proxyHttp}/readyz`, 1000, 200, ca),
  ]);
  return { admin, proxy, healthy: admin.healthy && proxy.healthy };
}
