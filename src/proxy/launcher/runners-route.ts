import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Launcher } from './launcher.js';

/** The path `prismctl runner list` reads on the proxy's metrics/status port. */
export const RUNNERS_PATH = '/runners';

/** GET /runners: `{ runners: RunnerProcessInfo[] }` as JSON. */
export function runnersRoute(launcher: Launcher) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if ((req.url ?? '/').split('?')[0] !== RUNNERS_PATH || req.method !== 'GET') return false;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify({ runners: launcher.list() })}\n`);
    return true;
  };
}
