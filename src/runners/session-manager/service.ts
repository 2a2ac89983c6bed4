import { create } from '@bufbuild/protobuf';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  CallerSessionInfoSchema,
  ListCallerSessionsResponseSchema,
  RevokeCallerSessionResponseSchema,
} from '../../gen/prism/data/v1/sessions_pb.js';
import type * as pb from '../../gen/prism/data/v1/sessions_pb.js';
import { unaryCalls, type RunnerResolver, type UnaryObserver } from '../call-context.js';
import type { CallerSessionAdmin, CallerSessionStore, StoredCallerSession } from '../types.js';

/** What a CallerSessions call works on: the namespace's session store and who administers it. */
export interface SessionsTarget {
  store: CallerSessionStore;
  admin: CallerSessionAdmin;
}

/** prism.data.v1.CallerSessions: operators list and revoke a namespace's caller sessions. */
export function callerSessionsService(
  resolve: RunnerResolver<SessionsTarget>,
  observe?: UnaryObserver,
): UntypedServiceImplementation {
  const unary = unaryCalls(resolve, observe);
  return {
    listCallerSessions: unary<pb.ListCallerSessionsRequest, pb.ListCallerSessionsResponse>(
      'ListCallerSessions',
      async ({ store, admin }) =>
        create(ListCallerSessionsResponseSchema, { sessions: (await admin.list(store)).map(toInfo) }),
    ),
    revokeCallerSession: unary<pb.RevokeCallerSessionRequest, pb.RevokeCallerSessionResponse>(
      'RevokeCallerSession',
      async ({ store, admin }, req) =>
        create(RevokeCallerSessionResponseSchema, { revokedLeases: await admin.revoke(store, req.id) }),
    ),
  };
}

function toInfo(record: StoredCallerSession): pb.CallerSessionInfo {
  return create(CallerSessionInfoSchema, {
    id: record.id,
    subject: record.subject,
    namespace: record.namespace,
    owner: record.owner,
    roles: record.leases.map((l) => l.role),
    createdAtMs: BigInt(record.createdAtMs),
    lastUsedMs: BigInt(record.lastUsedMs),
    expiresAtMs: BigInt(Number.isFinite(record.expiresAtMs) ? record.expiresAtMs : 0),
    idleTimeoutMs: BigInt(record.idleMs),
  });
}
