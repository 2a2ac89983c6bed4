import { effectiveIsolation, ISOLATABLE_TYPES } from '../../config/isolation.js';
import { PrismError } from '../../errors.js';
import type { RunnerFactory } from '../namespace-table.js';
import { RemoteRunner, type RunnerProcessHandle } from '../remote-runner.js';
import type { Launcher } from './launcher.js';
import type { RunnerProcess } from './runner-process.js';
import { RemoteEndpoint, type RemoteRunnerTls } from './remote-endpoint.js';

/**
 * Runners where the namespace says (`isolation`): `none` through `inProcess`; `pattern` in a
 * launched process of its own; `namespace` in the namespace's one launched process, shared by
 * its patterns with that isolation. The process is launched when the runner starts and stopped
 * when the last runner routed to it stops. A pattern with a `remote_runner` is routed to that
 * runner over mutual TLS with `remoteTls` (remote-endpoint.ts).
 */
export function isolatedRunners(
  inProcess: RunnerFactory,
  launcher: Launcher,
  remoteTls?: RemoteRunnerTls,
): RunnerFactory {
  return async (ns, assignment, patternName) => {
    const pattern = ns.patterns.find((p) => p.name === patternName);
    const isolation = pattern ? effectiveIsolation(ns, pattern) : 'none';
    if (isolation === 'none') return inProcess(ns, assignment, patternName);
    const assigned = assignment.patterns.find((p) => p.name === patternName);
    const type = assigned?.type || pattern!.type;
    if (isolation === 'remote')
      return remoteRunner(ns.namespace, patternName, type, pattern!.remoteRunner, remoteTls);
    if (!ISOLATABLE_TYPES.has(type))
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `${ns.namespace}/${patternName}: a ${type} runner cannot be launched`,
      );
    const group =
      isolation === 'pattern'
        ? [patternName]
        : ns.patterns
            .filter((p) => ISOLATABLE_TYPES.has(p.type) && effectiveIsolation(ns, p) === 'namespace')
            .map((p) => p.name);
    const key = `${ns.namespace}@${assignment.version}/${isolation === 'pattern' ? patternName : '*'}`;
    let running: RunnerProcess | undefined;
    const handle: RunnerProcessHandle = {
      clients: () => {
        if (!running)
          throw new PrismError(
            'E_UNAVAILABLE',
            `the runner process of ${ns.namespace}/${patternName} is not running`,
          );
        return running.clients();
      },
      serving: () => (running ? running.serving() : Promise.reject(new Error('stopped'))),
    };
    return new RemoteRunner(ns.namespace, patternName, type, handle, {
      acquire: async () => {
        running = await launcher.acquire(key, { namespace: ns, assignment }, group, isolation);
      },
      release: async () => {
        if (!running) return;
        running = undefined;
        await launcher.release(key);
      },
    });
  };
}

function remoteRunner(
  namespace: string,
  patternName: string,
  type: string,
  endpoint: string,
  tls: RemoteRunnerTls | undefined,
): RemoteRunner {
  if (!tls)
    throw new PrismError(
      'E_USAGE',
      `${namespace}/${patternName}: remote_runner ${endpoint} needs this proxy's client certificate for mutual TLS`,
      { hint: 'start the proxy with --runner-tls-ca, --runner-tls-cert and --runner-tls-key' },
    );
  const remote = new RemoteEndpoint(endpoint, tls);
  return new RemoteRunner(namespace, patternName, type, remote, {
    acquire: async () => {
      remote.open();
    },
    release: async () => {
      remote.close();
    },
  });
}
