import type { Metadata, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { toServiceError } from '../transport/grpc-status.js';
import type { CallerSession } from './types.js';

/** What authorization may read of a call besides its metadata: the request and the peer address. */
export interface CallFacts {
  request?: unknown;
  peer?: string;
  /** The type of the pattern the call is for (set by the proxy when it routes). */
  patternType?: string;
}

/** Finds the runner a call is for (by namespace and pattern metadata) and who is calling. */
export type RunnerResolver<R> = (
  metadata: Metadata,
  method: string,
  call?: CallFacts,
) => Promise<{ runner: R; session: CallerSession }>;

export const ANONYMOUS: CallerSession = Object.freeze({
  subject: 'anonymous',
  tenant: '',
  roles: [],
}) as CallerSession;

/** Sees every unary call (the proxy counts, times and drains them). */
export type UnaryObserver = (method: string, work: Promise<unknown>, metadata: Metadata) => void;

/**
 * A unary call's facts. The peer's address is a string built per call, and only authorization
 * reads it, so it is a getter; on the prototype, not in an object literal. A literal's getter is a
 * new closure per call, and V8 keeps the accessor in the old generation, where it pins the
 * closure's context until a full collection: every call's request, promises and answer outlived
 * the young-generation collections they should have died in and were promoted, 1.3 KB a call
 * (bench/RESULTS.md, session 16).
 */
class UnaryCallFacts implements CallFacts {
  readonly request: unknown;
  constructor(private readonly call: ServerUnaryCall<unknown, unknown>) {
    this.request = call.request;
  }
  get peer(): string {
    return this.call.getPeer();
  }
}

/**
 * A grpc-js unary handler factory over a resolver: each call resolves its runner and caller, runs
 * `handler`, is shown to `observe`, and answers with the result or the error's gRPC status.
 */
export function unaryCalls<R>(resolve: RunnerResolver<R>, observe?: UnaryObserver) {
  return <Req, Res>(
      method: string,
      handler: (runner: R, req: Req, call: { session: CallerSession; metadata: Metadata }) => Promise<Res>,
    ) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const work = resolve(call.metadata, method, new UnaryCallFacts(call)).then(({ runner, session }) =>
        handler(runner, call.request, { session, metadata: call.metadata }),
      );
      observe?.(method, work, call.metadata);
      work.then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err) as never, null),
      );
    };
}
