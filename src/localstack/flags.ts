import { Flags } from '@oclif/core';
import { DEFAULT_DEV_PORTS, type DevPorts } from './ports.js';

const port = (description: string, value: number) =>
  Flags.integer({ description, default: value, min: 1, max: 65535, helpGroup: 'PORTS' });

/** Ports of the embedded stack, all on 127.0.0.1. */
export const portFlags = {
  'admin-port': port('Admin gRPC port', DEFAULT_DEV_PORTS.admin),
  'admin-metrics-port': port('Admin /healthz and /metrics port', DEFAULT_DEV_PORTS.adminMetrics),
  'proxy-port': port('Proxy gRPC port', DEFAULT_DEV_PORTS.proxy),
  'proxy-metrics-port': port('Proxy /readyz and /metrics port', DEFAULT_DEV_PORTS.proxyMetrics),
};

export const stackFlags = {
  ...portFlags,
  persist: Flags.boolean({
    description:
      'Keep namespaces and sqlite data in <prism home>/dev/data between runs (default: a temporary directory removed on `dev down`)',
  }),
  namespaces: Flags.string({
    description:
      'Namespace files or directories to apply (default: examples/namespaces/embedded-playground.yaml)',
    multiple: true,
  }),
};

export function portsFrom(flags: {
  'admin-port': number;
  'admin-metrics-port': number;
  'proxy-port': number;
  'proxy-metrics-port': number;
}): DevPorts {
  return {
    admin: flags['admin-port'],
    adminMetrics: flags['admin-metrics-port'],
    proxy: flags['proxy-port'],
    proxyMetrics: flags['proxy-metrics-port'],
  };
}
