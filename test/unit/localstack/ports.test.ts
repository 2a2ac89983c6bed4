import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  checkPorts,
  DEFAULT_DEV_PORTS,
  describePortProblem,
  portSpecs,
} from '../../../src/localstack/ports.js';

describe('embedded stack ports', () => {
  it('defaults to admin 8981/8982, proxy 50090/50091 and the OpenID provider 5556, each with the flag that moves it', () => {
    expect(portSpecs(DEFAULT_DEV_PORTS).map((s) => [s.port, s.flag])).toEqual([
      [8981, '--admin-port'],
      [8982, '--admin-metrics-port'],
      [50090, '--proxy-port'],
      [50091, '--proxy-metrics-port'],
      [5556, '--idp-port'],
    ]);
  });

  it('leaves the OpenID provider out for the Docker stack, which runs Dex', () => {
    expect(portSpecs(DEFAULT_DEV_PORTS, { idp: false }).map((s) => s.flag)).not.toContain('--idp-port');
  });

  it('names a taken port, its component and the flag to move it', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as { port: number }).port;
    try {
      const problems = await checkPorts([{ component: 'proxy (gRPC)', flag: '--proxy-port', port }]);
      expect(problems.map((p) => describePortProblem(p))).toEqual([
        `port 127.0.0.1:${port} for the proxy (gRPC) is already taken by another process; free it or move the proxy (gRPC) with --proxy-port <port>`,
      ]);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('refuses one port given to two components', async () => {
    const problems = await checkPorts(
      portSpecs({ admin: 0, adminMetrics: 0, proxy: 0, proxyMetrics: 1, idp: 2 }),
    );
    expect(problems.filter((p) => p.reason === 'duplicate').map((p) => describePortProblem(p))).toEqual([
      'port 0 is given to both the admin (gRPC) and the admin (health and metrics); move one with --admin-metrics-port <port>',
      'port 0 is given to both the admin (gRPC) and the proxy (gRPC); move one with --proxy-port <port>',
    ]);
  });
});
