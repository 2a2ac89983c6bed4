import { PrismError, type PrismErrorCode } from '../errors.js';
import { GrpcStatus, statusName, type CallError, type GrpcStatusCode } from './status-codes.js';

/** The one place PrismError codes become gRPC statuses (servers) and back (clients). */
export const STATUS_OF: Record<PrismErrorCode, GrpcStatusCode> = {
  E_USAGE: GrpcStatus.INVALID_ARGUMENT,
  E_INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  E_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  E_INPUT_UNREADABLE: GrpcStatus.INVALID_ARGUMENT,
  E_INVALID_NAMESPACE: GrpcStatus.INVALID_ARGUMENT,
  E_FILE_EXISTS: GrpcStatus.ALREADY_EXISTS,
  E_TEMPLATE: GrpcStatus.INTERNAL,
  E_NOT_FOUND: GrpcStatus.NOT_FOUND,
  E_VERSION_CONFLICT: GrpcStatus.ABORTED,
  E_BACKEND_UNAVAILABLE: GrpcStatus.FAILED_PRECONDITION,
  E_BACKEND_DOWN: GrpcStatus.UNAVAILABLE,
  E_PAYLOAD_TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  E_CAPABILITY_MISSING: GrpcStatus.FAILED_PRECONDITION,
  E_STORE_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  E_UNREACHABLE: GrpcStatus.UNAVAILABLE,
  E_UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  E_PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  E_RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  E_PATTERN_MODULE: GrpcStatus.FAILED_PRECONDITION,
  E_INTERNAL: GrpcStatus.INTERNAL,
};

/** The gRPC status a PrismError code maps to. */
export function statusOf(code: PrismErrorCode): GrpcStatusCode {
  return STATUS_OF[code] ?? GrpcStatus.INTERNAL;
}

/** Metadata keys carrying the PrismError code and hint, so clients rebuild the same error. */
export const ERROR_CODE_KEY = 'x-prism-error-code';
export const ERROR_HINT_KEY = 'x-prism-error-hint';
/** JSON array of validation diagnostics on INVALID_ARGUMENT from ApplyNamespace. */
export const DIAGNOSTICS_KEY = 'x-prism-diagnostics-bin';

/** Rebuilds a PrismError from a failed call; `endpoint` names the server in connection errors. */
export function fromServiceError(err: CallError, endpoint: string): PrismError {
  const code = err.metadata?.get(ERROR_CODE_KEY)[0]?.toString() as PrismErrorCode | undefined;
  const hint = err.metadata?.get(ERROR_HINT_KEY)[0]?.toString();
  if (code && code in STATUS_OF) return new PrismError(code, err.details || err.message, { hint });
  if (err.code === GrpcStatus.UNAVAILABLE || err.code === GrpcStatus.DEADLINE_EXCEEDED) {
    return new PrismError('E_UNREACHABLE', `cannot reach ${endpoint}: ${err.details || 'connection failed'}`);
  }
  if (err.code === GrpcStatus.UNAUTHENTICATED) return new PrismError('E_UNAUTHENTICATED', err.details);
  if (err.code === GrpcStatus.PERMISSION_DENIED) return new PrismError('E_PERMISSION_DENIED', err.details);
  if (err.code === GrpcStatus.NOT_FOUND) return new PrismError('E_NOT_FOUND', err.details);
  if (err.code === GrpcStatus.RESOURCE_EXHAUSTED) {
    // grpc-js's own message limit ("Received message larger than max (N vs. M)").
    return new PrismError('E_PAYLOAD_TOO_LARGE', `${endpoint} refused the message: ${err.details}`, {
      hint: "send smaller payloads, or raise the server's --max-message-size",
    });
  }
  return new PrismError('E_INTERNAL', `${endpoint} answered ${statusName(err.code)}: ${err.details}`);
}
