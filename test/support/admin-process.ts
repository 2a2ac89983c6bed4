import { startPrismServer } from './server-process.js';

export interface RunningAdmin {
  /** host:port of the gRPC server. */
  endpoint: string;
  httpPort: number;
  prismHome: string;
  logs: () => string;
  /** Sends a signal (default SIGTERM) and waits for the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts a real `prismctl admin serve` on free loopback ports and waits until it serves. */
export async function startAdmin(
  options: { store?: string; extraArgs?: string[] } = {},
): Promise<RunningAdmin> {
  const args = ['admin', 'serve', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'];
  if (options.store) args.push('--store', options.store);
  args.push(...(options.extraArgs ?? []));
  if (!args.includes('--auth-issuer')) args.push('--no-auth');
  const server = await startPrismServer(args, 'prism admin serving');
  return {
    endpoint: `127.0.0.1:${server.ready.port as number}`,
    httpPort: server.ready.httpPort as number,
    prismHome: server.prismHome,
    logs: server.logs,
    stop: (signal) => server.stop(signal),
  };
}
