import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import * as kv from '../../../src/gen/prism/data/v1/keyvalue_pb.js';
import * as codec from '../../../src/client/kv-codec.js';

// The static codec of the kv commands must agree with protobuf-es's generated code, byte for byte
// on requests and object for object on responses.
describe('the kv commands codec', () => {
  const value = new Uint8Array([0, 1, 2, 254, 255]);

  it.each([
    [
      'SetRequest with every field',
      codec.encodeSetRequest('ключ/1', value, 3600n),
      kv.SetRequestSchema,
      { key: 'ключ/1', value, ttlSeconds: 3600n },
    ],
    [
      'SetRequest with defaults only',
      codec.encodeSetRequest('', new Uint8Array(0), 0n),
      kv.SetRequestSchema,
      {},
    ],
    [
      'SetRequest with the largest TTL',
      codec.encodeSetRequest('k', value, 2n ** 64n - 1n),
      kv.SetRequestSchema,
      { key: 'k', value, ttlSeconds: 2n ** 64n - 1n },
    ],
    ['GetRequest', codec.encodeKeyRequest('a/b'), kv.GetRequestSchema, { key: 'a/b' }],
    [
      'ScanRequest with every field',
      codec.encodeScanRequest('a/', 1000, 'c1'),
      kv.ScanRequestSchema,
      { prefix: 'a/', limit: 1000, cursor: 'c1' },
    ],
    ['ScanRequest with defaults only', codec.encodeScanRequest('', 0, ''), kv.ScanRequestSchema, {}],
  ] as const)('encodes a %s as protobuf-es does', (_, bytes, schema, init) => {
    expect(Buffer.from(bytes).toString('hex')).toBe(
      Buffer.from(toBinary(schema, create(schema as never, init as never))).toString('hex'),
    );
  });

  const responses = [
    ['SetResponse', kv.SetResponseSchema, {}, codec.decodeSetResponse],
    ['GetResponse, found', kv.GetResponseSchema, { found: true, value }, codec.decodeGetResponse],
    ['GetResponse, missing', kv.GetResponseSchema, {}, codec.decodeGetResponse],
    ['DeleteResponse', kv.DeleteResponseSchema, { existed: true }, codec.decodeDeleteResponse],
    ['ExistsResponse', kv.ExistsResponseSchema, { exists: true }, codec.decodeExistsResponse],
    [
      'ScanResponse',
      kv.ScanResponseSchema,
      { keys: ['a/1', 'a/2', ''], cursor: 'next' },
      codec.decodeScanResponse,
    ],
    ['GetTtlResponse, no expiry', kv.GetTtlResponseSchema, { ttlMs: -1n }, codec.decodeGetTtlResponse],
    ['GetTtlResponse, missing', kv.GetTtlResponseSchema, { ttlMs: -2n }, codec.decodeGetTtlResponse],
    ['GetTtlResponse, a day', kv.GetTtlResponseSchema, { ttlMs: 86_400_000n }, codec.decodeGetTtlResponse],
  ] as const;

  it.each(responses)('decodes a %s to the object protobuf-es decodes', (_, schema, init, decode) => {
    const bytes = toBinary(schema, create(schema as never, init as never));
    expect(decode(bytes)).toEqual(fromBinary(schema, bytes));
  });

  it('skips fields it does not know, as a newer server may send them', () => {
    const bytes = new BinaryWriter()
      .tag(9, WireType.LengthDelimited)
      .string('from a newer proto')
      .tag(1, WireType.Varint)
      .bool(true)
      .tag(10, WireType.Varint)
      .uint64(7n)
      .tag(2, WireType.LengthDelimited)
      .bytes(value)
      .finish();
    expect(codec.decodeGetResponse(bytes)).toEqual({
      $typeName: 'prism.data.v1.GetResponse',
      found: true,
      value,
    });
  });

  it('names the KeyValue methods by their gRPC paths', () => {
    expect(Object.values(codec.KV_PATH)).toEqual(
      ['Set', 'Get', 'Delete', 'Exists', 'Scan', 'GetTtl'].map((m) => `/${kv.KeyValue.typeName}/${m}`),
    );
  });
});
