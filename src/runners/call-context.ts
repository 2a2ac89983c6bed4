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
 * A grpc-js unary handler factory over a resolver: each call resolves its runner and caller, runs
 * `handler`, is shown to `observe`, and answers with the result or the error's gRPC status.
 */
export function unaryCalls<R>(resolve: RunnerResolver<R>, observe?: UnaryObserver) {
  return <Req, Res>(
      method: string,
      handler: (runner: R, req: Req, call: { session: CallerSession; metadata: Metadata }) => Promise<Res>,
    ) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      // The peer's address is a string built per call: only authorization reads it.
      const facts: CallFacts = {
        request: call.request,
        get peer() {
          return call.getPeer();
        },
      };
      const work = resolve(call.metadata, method, facts).then(({ runner, session }) =>
        handler(runner, call.request, { session, metadata: call.metadata }),
      );
      observe?.(method, work, call.metadata);
      work.then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err) as never, null),
      );
    };
}
