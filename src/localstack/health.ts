import { get } from 'node:http';
import { endpoints, type DevState } from './state.js';

export interface Probe {
  healthy: boolean;
  detail: string;
}

/** GET `url`: healthy on 200; the body (up to `maxBody` characters, or the error) as detail. Never throws. */
export function probeHttp(url: string, timeoutMs = 1000, maxBody = 200): Promise<Probe> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () =>
        resolve({ healthy: res.statusCode === 200, detail: body.trim().slice(0, maxBody) }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ healthy: false, detail: err.message }));
  });
}

export interface StackHealth {
  admin: Probe;
  proxy: Probe;
  healthy: boolean;
}

/** The admin's /healthz and the proxy's /readyz. */
export async function stackHealth(state: Pick<DevState, 'host' | 'ports'>): Promise<StackHealth> {
  const e = endpoints(state);
  const [admin, proxy] = await Promise.all([
    probeHttp(`${e.adminHttp}/healthz`),
    probeHttp(`${e.proxyHttp}/readyz`),
  ]);
  return { admin, proxy, healthy: admin.healthy && proxy.healthy };
}
