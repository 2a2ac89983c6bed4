import { create } from '@bufbuild/protobuf';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  BatchDeleteResponseSchema,
  BatchSetResponseSchema,
  DeleteResponseSchema,
  ExistsResponseSchema,
  ExpireResponseSchema,
  GetTtlResponseSchema,
  PersistResponseSchema,
  ScanResponseSchema,
  SetResponseSchema,
} from '../../gen/prism/data/v1/keyvalue_pb.js';
import type * as kv from '../../gen/prism/data/v1/keyvalue_pb.js';
import { unaryCalls, type RunnerResolver, type UnaryObserver } from '../call-context.js';
import type { KeyValueCallsApi } from '../types.js';

const NO_VALUE = new Uint8Array(0);

/**
 * A GetResponse as the plain object protobuf-es messages are: what `create()` returns, without its
 * walk over the schema (a BatchGet builds one per key).
 */
function getResponse(value: Uint8Array | undefined): kv.GetResponse {
  return value === undefined
    ? { $typeName: 'prism.data.v1.GetResponse', found: false, value: NO_VALUE }
    : { $typeName: 'prism.data.v1.GetResponse', found: true, value };
}

/** prism.data.v1.KeyValue over a resolver: the standalone runner resolves one runner, the proxy routes. */
export function keyValueService(
  resolve: RunnerResolver<KeyValueCallsApi>,
  observe?: UnaryObserver,
): UntypedServiceImplementation {
  const unary = unaryCalls(resolve, observe);
  return {
    set: unary<kv.SetRequest, kv.SetResponse>('Set', async (r, req) => {
      await r.set(req.key, req.value, Number(req.ttlSeconds));
      return create(SetResponseSchema);
    }),
    get: unary<kv.GetRequest, kv.GetResponse>('Get', async (r, req) => getResponse(await r.get(req.key))),
    delete: unary<kv.DeleteRequest, kv.DeleteResponse>('Delete', async (r, req) =>
      create(DeleteResponseSchema, { existed: await r.delete(req.key) }),
    ),
    exists: unary<kv.ExistsRequest, kv.ExistsResponse>('Exists', async (r, req) =>
      create(ExistsResponseSchema, { exists: await r.exists(req.key) }),
    ),
    batchSet: unary<kv.BatchSetRequest, kv.BatchSetResponse>('BatchSet', async (r, req) => {
      await r.batchSet(
        req.items.map((i) => ({ key: i.key, value: i.value, ttlSeconds: Number(i.ttlSeconds) })),
      );
      return create(BatchSetResponseSchema);
    }),
    batchGet: unary<kv.BatchGetRequest, kv.BatchGetResponse>('BatchGet', async (r, req) => ({
      $typeName: 'prism.data.v1.BatchGetResponse',
      results: (await r.batchGet(req.keys)).map(getResponse),
    })),
    batchDelete: unary<kv.BatchDeleteRequest, kv.BatchDeleteResponse>('BatchDelete', async (r, req) =>
      create(BatchDeleteResponseSchema, { existed: await r.batchDelete(req.keys) }),
    ),
    scan: unary<kv.ScanRequest, kv.ScanResponse>('Scan', async (r, req) => {
      const page = await r.scan(req.prefix, req.limit || undefined, req.cursor || undefined);
      return create(ScanResponseSchema, { keys: page.keys, cursor: page.cursor ?? '' });
    }),
    expire: unary<kv.ExpireRequest, kv.ExpireResponse>('Expire', async (r, req) =>
      create(ExpireResponseSchema, { existed: await r.expire(req.key, Number(req.ttlSeconds)) }),
    ),
    getTtl: unary<kv.GetTtlRequest, kv.GetTtlResponse>('GetTtl', async (r, req) =>
      create(GetTtlResponseSchema, { ttlMs: BigInt(await r.ttl(req.key)) }),
    ),
    persist: unary<kv.PersistRequest, kv.PersistResponse>('Persist', async (r, req) =>
      create(PersistResponseSchema, { existed: await r.persist(req.key) }),
    ),
  };
}
