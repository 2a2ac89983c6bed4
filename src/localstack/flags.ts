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
  'idp-port': port(
    "Embedded stack's OpenID provider port (the Docker stack runs Dex: --port dex=<port>)",
    DEFAULT_DEV_PORTS.idp,
  ),
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
  'idp-port': number;
}): DevPorts {
  return {
    admin: flags['admin-port'],
    adminMetrics: flags['admin-metrics-port'],
    proxy: flags['proxy-port'],
    proxyMetrics: flags['proxy-metrics-port'],
    idp: flags['idp-port'],
  };
}

/** The Docker stack's flags; each also has a key in <prism home>/dev.yaml. */
export const dockerStackFlags = {
  stack: Flags.string({
    description:
      'Stack name, in container names (prism-<stack>-<component>) and labels [dev.yaml: stack] (default dev)',
    helpGroup: 'DOCKER',
  }),
  components: Flags.string({
    description: 'Components to run, comma-separated, e.g. redis,postgres [dev.yaml: only] (default: all)',
    multiple: true,
    delimiter: ',',
    helpGroup: 'DOCKER',
  }),
  image: Flags.string({
    description:
      'Use another image for a component: <component>=<image> (repeatable) [dev.yaml: components.<c>.image]',
    multiple: true,
    helpGroup: 'DOCKER',
  }),
  port: Flags.string({
    description:
      'Move a component port: <component>=<port> or <component>.<name>=<port> (repeatable) [dev.yaml: components.<c>.ports.<name>]',
    multiple: true,
    helpGroup: 'DOCKER',
  }),
  network: Flags.string({
    description:
      'bridge: a network per stack, ports published on 127.0.0.1; host: host networking (Linux, CI) [dev.yaml: network]',
    options: ['bridge', 'host'],
    helpGroup: 'DOCKER',
  }),
  config: Flags.string({
    description: 'Stack configuration file (default: <prism home>/dev.yaml when it exists)',
    helpGroup: 'DOCKER',
  }),
  'keep-on-failure': Flags.boolean({
    description: 'Keep the containers of a failed run to inspect them (default: remove what the run started)',
    helpGroup: 'DOCKER',
  }),
};
