import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { isPrismError, type PrismErrorCode } from '../errors.js';
import { statusName } from './status-codes.js';
import { ERROR_CODE_KEY, ERROR_HINT_KEY, STATUS_OF, statusOf as statusNumberOf } from './status-map.js';

// The mapping itself lives in status-map.ts, which clients load without grpc-js.
export { DIAGNOSTICS_KEY, ERROR_CODE_KEY, ERROR_HINT_KEY, fromServiceError } from './status-map.js';

/** The gRPC status a PrismError code maps to, as grpc-js's enum. */
export function statusOf(code: PrismErrorCode): status {
  return status[statusName(statusNumberOf(code)) as keyof typeof status];
}

/**
 * Turns any thrown value into a ServiceError. Errors that are not PrismErrors become INTERNAL with
 * a generic message: internal details (stacks, backend addresses) never reach a client.
 */
export function toServiceError(err: unknown, extra?: (metadata: Metadata) => void): Partial<ServiceError> {
  const metadata = new Metadata();
  const code = codeOf(err);
  metadata.set(ERROR_CODE_KEY, code);
  const prism = isPrismError(err) ? err : undefined;
  if (prism?.hint) metadata.set(ERROR_HINT_KEY, prism.hint);
  extra?.(metadata);
  return {
    code: statusOf(code),
    details: prism ? prism.message : 'internal error; see the server log',
    metadata,
  };
}

function codeOf(err: unknown): PrismErrorCode {
  if (isPrismError(err)) return err.code;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && code in STATUS_OF) return code as PrismErrorCode;
  return 'E_INTERNAL';
}
