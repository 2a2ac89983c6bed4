import { createServer } from 'node:net';

/** The embedded stack's listeners: which component owns each, and the flag that moves it. */
export interface PortSpec {
  component: string;
  flag: string;
  port: number;
  /** How to move it, when more than `<flag> <port>` (e.g. a flag and a config key). */
  fix?: string;
}

export const DEV_HOST = '127.0.0.1';

export interface DevPorts {
  admin: number;
  adminMetrics: number;
  proxy: number;
  proxyMetrics: number;
  /** The embedded stack's identity provider; the Docker stack runs Dex instead. */
  idp: number;
}

export const DEFAULT_DEV_PORTS: DevPorts = {
  admin: 8981,
  adminMetrics: 8982,
  proxy: 50090,
  proxyMetrics: 50091,
  idp: 5556,
};

/** The listeners of the bundled servers; the identity provider only for the embedded stack. */
export function portSpecs(ports: DevPorts, options: { idp?: boolean } = {}): PortSpec[] {
  const idp = options.idp ?? true;
  return [
    { component: 'admin (gRPC)', flag: '--admin-port', port: ports.admin },
    { component: 'admin (health and metrics)', flag: '--admin-metrics-port', port: ports.adminMetrics },
    { component: 'proxy (gRPC)', flag: '--proxy-port', port: ports.proxy },
    { component: 'proxy (health and metrics)', flag: '--proxy-metrics-port', port: ports.proxyMetrics },
    ...(idp ? [{ component: 'identity provider (OIDC)', flag: '--idp-port', port: ports.idp }] : []),
  ];
}

/** True when `host:port` can be bound right now. */
export function portFree(port: number, host = DEV_HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export interface PortProblem {
  spec: PortSpec;
  reason: 'taken' | 'duplicate';
  /** For a duplicate: the other component given the same port. */
  other?: PortSpec;
}

/** Every problem with the wanted ports, in the order of `specs`: one port twice, or one taken. */
export async function checkPorts(specs: readonly PortSpec[], host = DEV_HOST): Promise<PortProblem[]> {
  const problems: PortProblem[] = [];
  const seen = new Map<number, PortSpec>();
  for (const spec of specs) {
    const other = seen.get(spec.port);
    if (other) problems.push({ spec, reason: 'duplicate', other });
    else seen.set(spec.port, spec);
  }
  const free = await Promise.all([...seen.values()].map((s) => portFree(s.port, host)));
  [...seen.values()].forEach((spec, i) => {
    if (!free[i]) problems.push({ spec, reason: 'taken' });
  });
  return problems;
}

/** One sentence naming the port, the component and the flag that moves it. */
export function describePortProblem(problem: PortProblem, host = DEV_HOST): string {
  const { spec } = problem;
  if (problem.reason === 'duplicate') {
    return `port ${spec.port} is given to both the ${problem.other!.component} and the ${spec.component}; move one with ${spec.flag} <port>`;
  }
  return `port ${host}:${spec.port} for the ${spec.component} is already taken by another process; free it or move the ${spec.component} with ${spec.fix ?? `${spec.flag} <port>`}`;
}
