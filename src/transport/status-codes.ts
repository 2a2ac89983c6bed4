/**
 * gRPC status codes by name (the numbers of the gRPC spec, as grpc-js's `status` enum), for the
 * modules that map errors without loading grpc-js: the CLI's node:http2 client
 * (src/client/grpc-http2.ts) and the error mapping it shares with grpc-js callers.
 */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const NAMES = Object.fromEntries(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

/** The status's name (`UNAVAILABLE`), or its number for a code outside the spec. */
export function statusName(code: number): string {
  return NAMES[code] ?? String(code);
}

/**
 * What a failed call carries, whichever client made it: grpc-js's ServiceError has this shape, and
 * so do the errors of src/client/grpc-http2.ts.
 */
export interface CallError {
  code: number;
  details: string;
  message: string;
  metadata?: { get(key: string): (string | Buffer)[] } | undefined;
}
