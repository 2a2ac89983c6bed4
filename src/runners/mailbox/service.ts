/**
 * prism.data.v1.Mailbox over a resolver: Query, Get and Delete as unary calls, Watch as a server
 * stream that ends when the client cancels, the runner stops or the proxy drains.
 */
import { create } from '@bufbuild/protobuf';
import { Metadata, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { MailboxFilter as StoreFilter } from '../../drivers/interfaces.js';
import { hasCondition } from '../../drivers/mailbox-sql.js';
import { PrismError } from '../../errors.js';
import {
  MailboxDeleteResponseSchema,
  MailboxGetResponseSchema,
  MailboxOrder,
  MailboxQueryResponseSchema,
  MailboxWatchResponseSchema,
  type MailboxDeleteRequest,
  type MailboxDeleteResponse,
  type MailboxFilter,
  type MailboxGetRequest,
  type MailboxGetResponse,
  type MailboxQueryRequest,
  type MailboxQueryResponse,
  type MailboxWatchRequest,
  type MailboxWatchResponse,
} from '../../gen/prism/data/v1/mailbox_pb.js';
import { toServiceError } from '../../transport/grpc-status.js';
import { unaryCalls, type RunnerResolver, type UnaryObserver } from '../call-context.js';
import { DEFAULT_QUERY_LIMIT, type MailboxRunnerApi } from './runner.js';

/** Most ids one Delete names (each is a statement parameter). */
export const MAX_DELETE_IDS = 1000;

/** The wire filter as the store's: empty fields are no condition. */
export function storeFilter(filter: MailboxFilter | undefined): StoreFilter {
  if (!filter) return {};
  const out: StoreFilter = {};
  if (filter.sinceMs !== 0n) out.sinceMs = Number(filter.sinceMs);
  if (filter.untilMs !== 0n) out.untilMs = Number(filter.untilMs);
  if (filter.topic) out.topic = filter.topic;
  if (filter.messageId) out.messageIds = [filter.messageId];
  if (filter.correlationId) out.correlationId = filter.correlationId;
  if (filter.subject) out.subject = filter.subject;
  if (filter.tenant) out.tenant = filter.tenant;
  if (Object.keys(filter.headers).length > 0) out.headers = { ...filter.headers };
  return out;
}

export interface MailboxService {
  implementation: UntypedServiceImplementation;
  /** Ends every open Watch stream (drain). */
  endAll(): void;
  /** Watch streams currently open. */
  openCount(): number;
}

export function mailboxService(
  resolve: RunnerResolver<MailboxRunnerApi>,
  observe?: UnaryObserver,
): MailboxService {
  const unary = unaryCalls(resolve, observe);
  const streams = new Set<() => void>();

  const watch = (call: ServerWritableStream<MailboxWatchRequest, MailboxWatchResponse>) => {
    let stop: (() => void) | undefined;
    let ended = false;
    const fail = (err: unknown) => {
      if (ended) return;
      ended = true;
      streams.delete(end);
      stop?.();
      // grpc-js sends a server stream's status on 'error'; destroy() would drop it.
      const status = toServiceError(err);
      call.emit('error', Object.assign(new Error(status.details), status));
    };
    const end = () =>
      fail(new PrismError('E_UNAVAILABLE', 'the mailbox stopped watching', { hint: 'open the Watch again' }));
    const cancel = () => {
      if (ended) return;
      ended = true;
      streams.delete(end);
      stop?.();
    };
    streams.add(end);
    call.on('cancelled', cancel);
    call.on('close', cancel);
    resolve(call.metadata, 'Watch')
      .then(({ runner }) => {
        if (ended) return;
        stop = runner.watch(
          storeFilter(call.request.filter),
          (message) => {
            if (!ended) call.write(create(MailboxWatchResponseSchema, { message }));
          },
          end,
        );
        // Response headers tell the client the watch is in place: what is stored from now on arrives.
        call.sendMetadata(new Metadata());
      })
      .catch(fail);
  };

  return {
    implementation: {
      query: unary<MailboxQueryRequest, MailboxQueryResponse>('Query', async (r, req) => {
        const page = await r.query({
          filter: storeFilter(req.filter),
          order: req.order === MailboxOrder.OLDEST_FIRST ? 'oldest' : 'newest',
          limit: req.limit || DEFAULT_QUERY_LIMIT,
          ...(req.pageToken ? { pageToken: req.pageToken } : {}),
        });
        return create(MailboxQueryResponseSchema, page);
      }),
      get: unary<MailboxGetRequest, MailboxGetResponse>('Get', async (r, req) =>
        create(MailboxGetResponseSchema, { message: await r.get(req.messageId) }),
      ),
      delete: unary<MailboxDeleteRequest, MailboxDeleteResponse>('Delete', async (r, req) => {
        const filter = storeFilter(req.filter);
        const byIds = req.messageIds.length > 0;
        if (byIds === hasCondition(filter)) {
          throw new PrismError(
            'E_INVALID_ARGUMENT',
            byIds
              ? 'a delete takes message ids or a filter, not both'
              : 'a delete needs message ids or a filter with at least one condition',
          );
        }
        if (req.messageIds.length > MAX_DELETE_IDS) {
          throw new PrismError(
            'E_INVALID_ARGUMENT',
            `a delete takes at most ${MAX_DELETE_IDS} message ids, got ${req.messageIds.length}`,
            { hint: 'split the ids over several calls, or delete by a filter' },
          );
        }
        const deleted = await r.delete(byIds ? { messageIds: req.messageIds } : { filter });
        return create(MailboxDeleteResponseSchema, { deleted: BigInt(deleted) });
      }),
      watch,
    },
    openCount: () => streams.size,
    endAll: () => {
      for (const end of [...streams]) end();
    },
  };
}
