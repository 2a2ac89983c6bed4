import { PrismError } from '../../errors.js';

/**
 * A schema-registry failure with Confluent's error code (docs/schemas.md, Errors). The HTTP status
 * is the code's first three digits; the PrismError code is what the CLI and gRPC side map.
 */
export class RegistryError extends PrismError {
  constructor(
    readonly errorCode: number,
    message: string,
    /** One line per problem, for an incompatible schema. */
    readonly messages: readonly string[] = [],
  ) {
    super(prismCode(errorCode), message);
    this.name = 'RegistryError';
  }

  get httpStatus(): number {
    return Number(String(this.errorCode).slice(0, 3));
  }
}

function prismCode(errorCode: number): PrismError['code'] {
  const status = Number(String(errorCode).slice(0, 3));
  if (status === 404) return 'E_NOT_FOUND';
  if (status === 401) return 'E_UNAUTHENTICATED';
  if (status === 403) return 'E_PERMISSION_DENIED';
  if (status >= 500) return 'E_INTERNAL';
  return 'E_INVALID_ARGUMENT';
}

export const subjectNotFound = (subject: string) =>
  new RegistryError(40401, `Subject '${subject}' not found.`);
export const versionNotFound = (subject: string, version: number | string) =>
  new RegistryError(40402, `Version ${version} not found for subject '${subject}'.`);
export const schemaNotFound = (what: string) => new RegistryError(40403, `Schema ${what} not found.`);
export const invalidSchema = (reason: string) => new RegistryError(42201, `Invalid schema: ${reason}`);
