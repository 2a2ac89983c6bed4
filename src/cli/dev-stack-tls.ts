/**
 * `prismctl kv set -n playground greeting hello` after `prismctl dev up` must work unchanged,
 * although the local stack serves TLS with its own CA. So a command given no TLS setting, whose
 * endpoint is a loopback address on the running local stack's admin or proxy port, dials it with
 * TLS and that stack's CA, both read from the stack's state file (<prism home>/dev/state.json).
 * Anything the person says (--tls, --ca-file or PRISM_TLS_CA_FILE, --tls-server-name, a client
 * certificate) wins, and no other endpoint changes.
 */
import { join } from 'node:path';
import { prismHome } from '../config/home.js';
import { readState, stackAlive } from '../localstack/state.js';
import type { ClientTls } from '../transport/dial.js';
import { isLoopbackHost, parseEndpoint } from '../transport/listen-address.js';

export function withDevStackTls(endpointText: string, tls: ClientTls): ClientTls {
  if (tls.tls || tls.caFile !== undefined || tls.serverName !== undefined || tls.certFile !== undefined) {
    return tls;
  }
  let endpoint;
  try {
    endpoint = parseEndpoint(endpointText);
  } catch {
    return tls; // the dialler reports the bad endpoint
  }
  if (!isLoopbackHost(endpoint.host)) return tls;
  // Read without devDir(), which would create <prism home>/dev on every command.
  const state = readState(join(prismHome(), 'dev', 'state.json'));
  if (!state?.tls || (endpoint.port !== state.ports.admin && endpoint.port !== state.ports.proxy)) return tls;
  if (!stackAlive(state.pid)) return tls;
  return { ...tls, caFile: state.tls.caFile };
}
