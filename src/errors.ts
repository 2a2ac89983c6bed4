/**
 * The PrismError family: every failure that crosses a module boundary carries a stable code.
 * Callers branch on `code`, never on message text. The CLI maps codes to exit codes in
 * src/cli/exit-codes.ts; servers map them to gRPC statuses in one place each.
 */
export type PrismErrorCode =
  | 'E_USAGE'
  | 'E_INVALID_ARGUMENT'
  | 'E_UNAVAILABLE'
  | 'E_INPUT_UNREADABLE'
  | 'E_INVALID_NAMESPACE'
  | 'E_FILE_EXISTS'
  | 'E_TEMPLATE'
  | 'E_NOT_FOUND'
  | 'E_VERSION_CONFLICT'
  | 'E_BACKEND_UNAVAILABLE'
  | 'E_BACKEND_DOWN'
  /** A message above a backend's size limit: RESOURCE_EXHAUSTED, never retried. */
  | 'E_PAYLOAD_TOO_LARGE'
  | 'E_CAPABILITY_MISSING'
  | 'E_STORE_UNAVAILABLE'
  | 'E_UNREACHABLE'
  | 'E_UNAUTHENTICATED'
  | 'E_PERMISSION_DENIED'
  /** A quota or rate limit of a pattern: RESOURCE_EXHAUSTED; retry later. */
  | 'E_RESOURCE_EXHAUSTED'
  /** A pattern module (docs/sdk.md) cannot be loaded or registered. */
  | 'E_PATTERN_MODULE'
  | 'E_INTERNAL';

/**
 * Marks PrismErrors across copies of this module: a pattern module's errors come from
 * prismctl/sdk (dist/errors.js), while the CLI runs its bundled copy (docs/sdk.md).
 */
const BRAND = Symbol.for('prismctl.PrismError');

export class PrismError extends Error {
  readonly code: PrismErrorCode;
  /** One-line suggestion shown under the message. */
  readonly hint?: string;

  constructor(code: PrismErrorCode, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PrismError';
    this.code = code;
    this.hint = options?.hint;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

export class UsageError extends PrismError {
  constructor(message: string, hint?: string) {
    super('E_USAGE', message, { hint });
    this.name = 'UsageError';
  }
}

export function isPrismError(err: unknown): err is PrismError {
  return err instanceof PrismError || (err instanceof Error && BRAND in err);
}
