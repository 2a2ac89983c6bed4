import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { isPrismError, PrismError, type PrismErrorCode } from '../errors.js';

/** The one place PrismError codes become gRPC statuses (servers) and back (clients). */
const STATUS_OF: Record<PrismErrorCode, status> = {
  E_USAGE: status.INVALID_ARGUMENT,
  E_INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  E_UNAVAILABLE: status.UNAVAILABLE,
  E_INPUT_UNREADABLE: status.INVALID_ARGUMENT,
  E_INVALID_NAMESPACE: status.INVALID_ARGUMENT,
  E_FILE_EXISTS: status.ALREADY_EXISTS,
  E_TEMPLATE: status.INTERNAL,
  E_NOT_FOUND: status.NOT_FOUND,
  E_VERSION_CONFLICT: status.ABORTED,
  E_BACKEND_UNAVAILABLE: status.FAILED_PRECONDITION,
  E_BACKEND_DOWN: status.UNAVAILABLE,
  E_PAYLOAD_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  E_CAPABILITY_MISSING: status.FAILED_PRECONDITION,
  E_STORE_UNAVAILABLE: status.UNAVAILABLE,
  E_UNREACHABLE: status.UNAVAILABLE,
  E_UNAUTHENTICATED: status.UNAUTHENTICATED,
  E_PERMISSION_DENIED: status.PERMISSION_DENIED,
  E_INTERNAL: status.INTERNAL,
};

/** The gRPC status a PrismError code maps to. */
export function statusOf(code: PrismErrorCode): status {
  return STATUS_OF[code] ?? status.INTERNAL;
}

/** Metadata keys carrying the PrismError code and hint, so clients rebuild the same error. */
export const ERROR_CODE_KEY = 'x-prism-error-code';
export const ERROR_HINT_KEY = 'x-prism-error-hint';
/** JSON array of validation diagnostics on INVALID_ARGUMENT from ApplyNamespace. */
export const DIAGNOSTICS_KEY = 'x-prism-diagnostics-bin';

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
    code: STATUS_OF[code],
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

/** Rebuilds a PrismError from a failed call; `endpoint` names the server in connection errors. */
export function fromServiceError(err: ServiceError, endpoint: string): PrismError {
  const code = err.metadata?.get(ERROR_CODE_KEY)[0]?.toString() as PrismErrorCode | undefined;
  const hint = err.metadata?.get(ERROR_HINT_KEY)[0]?.toString();
  if (code && code in STATUS_OF) return new PrismError(code, err.details || err.message, { hint });
  if (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED) {
    return new PrismError('E_UNREACHABLE', `cannot reach ${endpoint}: ${err.details || 'connection failed'}`);
  }
  if (err.code === status.UNAUTHENTICATED) return new PrismError('E_UNAUTHENTICATED', err.details);
  if (err.code === status.PERMISSION_DENIED) return new PrismError('E_PERMISSION_DENIED', err.details);
  if (err.code === status.NOT_FOUND) return new PrismError('E_NOT_FOUND', err.details);
  if (err.code === status.RESOURCE_EXHAUSTED) {
    // grpc-js's own message limit ("Received message larger than max (N vs. M)").
    return new PrismError('E_PAYLOAD_TOO_LARGE', `${endpoint} refused the message: ${err.details}`, {
      hint: "send smaller payloads, or raise the server's --max-message-size",
    });
  }
  return new PrismError('E_INTERNAL', `${endpoint} answered ${status[err.code]}: ${err.details}`);
}
