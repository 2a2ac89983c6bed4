import { PrismError } from '../../errors.js';
import type { RunnerProcessInfo } from './runner-process.js';
import { RUNNERS_PATH } from './runners-route.js';

/** Reads a proxy's launched runner processes from its status port (GET /runners). */
export async function fetchRunners(statusEndpoint: string): Promise<RunnerProcessInfo[]> {
  const base = /^https?:\/\//.test(statusEndpoint) ? statusEndpoint : `http://${statusEndpoint}`;
  const url = new URL(RUNNERS_PATH, base);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new PrismError(
      'E_UNREACHABLE',
      `cannot reach the proxy's status port at ${url.origin}: ${(err as Error).message}`,
      {
        hint: 'point --proxy-status at the proxy’s --metrics-listen address',
      },
    );
  }
  if (!res.ok)
    throw new PrismError('E_UNAVAILABLE', `${url.href} answered ${res.status}`, {
      hint: 'is this a Prism proxy’s --metrics-listen address?',
    });
  return ((await res.json()) as { runners: RunnerProcessInfo[] }).runners;
}
