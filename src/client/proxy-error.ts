import { PrismError } from '../errors.js';
import type { CallError } from '../transport/status-codes.js';
import { fromServiceError } from '../transport/status-map.js';
import { tlsFailure, type DialMode } from '../transport/tls-errors.js';

/**
 * The PrismError a failed call to the proxy (or a standalone runner) raises: a TLS failure named
 * with its fix, a refused connection as "cannot reach the Prism proxy", else the server's status.
 */
export function proxyCallError(err: CallError, endpoint: string, mode: DialMode): PrismError {
  const tls = tlsFailure(err, endpoint, mode);
  if (tls) return tls;
  const prism = fromServiceError(err, endpoint);
  if (prism.code === 'E_UNREACHABLE' && !err.metadata?.get('x-prism-error-code').length) {
    return new PrismError('E_UNREACHABLE', `cannot reach the Prism proxy at ${endpoint}`, {
      hint: 'start one with `prismctl proxy serve` or `prismctl dev up`, or point --proxy / PRISM_PROXY_ENDPOINT at a running one',
    });
  }
  return prism;
}
