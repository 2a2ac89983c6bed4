import type { PrismErrorCode } from '../errors.js';

/** The one place PrismError codes become process exit codes. */
export const EXIT_CODES: Record<PrismErrorCode, number> = {
  E_USAGE: 2,
  E_INVALID_ARGUMENT: 1,
  E_UNAVAILABLE: 1,
  E_INPUT_UNREADABLE: 2,
  E_INVALID_NAMESPACE: 1,
  E_FILE_EXISTS: 1,
  E_TEMPLATE: 1,
  E_NOT_FOUND: 1,
  E_VERSION_CONFLICT: 1,
  E_BACKEND_UNAVAILABLE: 1,
  E_BACKEND_DOWN: 1,
  E_PAYLOAD_TOO_LARGE: 1,
  E_CAPABILITY_MISSING: 1,
  E_STORE_UNAVAILABLE: 1,
  E_UNREACHABLE: 2,
  E_UNAUTHENTICATED: 1,
  E_PERMISSION_DENIED: 1,
  E_INTERNAL: 1,
};
