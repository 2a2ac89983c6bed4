import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  BatchGetResponseSchema,
  GetResponseSchema,
  KeyValue,
  type BatchGetResponse,
  type GetResponse,
} from '../../../src/gen/prism/data/v1/keyvalue_pb.js';
import { fastEncoders } from '../../../src/transport/fast-encoders.js';
import { grpcServiceDefinition } from '../../../src/transport/service-definition.js';

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);
const get = (found: boolean, value = new Uint8Array()) => create(GetResponseSchema, { found, value });
const encodeGet = fastEncoders.get('prism.data.v1.GetResponse')!;
const encodeBatch = fastEncoders.get('prism.data.v1.BatchGetResponse')!;
// Buffer.equals, not toEqual: a deep comparison of megabytes takes a minute.
const same = (a: Uint8Array | undefined, b: Uint8Array) => {
  expect(a).toBeDefined();
  expect(a!.byteLength).toBe(b.byteLength);
  expect(Buffer.from(a!).equals(Buffer.from(b))).toBe(true);
};

describe('the KeyValue response encoders', () => {
  // Lengths on both sides of every varint size boundary the value length can cross.
  const lengths = [0, 1, 100, 127, 128, 16_383, 16_384, 2_097_152];

  it('write a GetResponse byte for byte as protobuf-es toBinary does', () => {
    for (const length of lengths)
      for (const found of [true, false]) {
        const m = get(found, bytes(length));
        same(encodeGet(m), toBinary(GetResponseSchema, m));
      }
    same(encodeGet(get(false)), new Uint8Array());
    same(encodeGet(get(true, Buffer.from('abc'))), Uint8Array.of(0x08, 0x01, 0x12, 3, 97, 98, 99));
  });

  it('write a BatchGetResponse byte for byte, empty results included', () => {
    const results = [
      ...lengths.map((n) => get(n > 0, bytes(n, n % 251))),
      get(false),
      get(true),
      get(true, Buffer.from('a Buffer value')),
    ];
    const m = create(BatchGetResponseSchema, { results });
    same(encodeBatch(m), toBinary(BatchGetResponseSchema, m));
    same(encodeBatch(create(BatchGetResponseSchema)), new Uint8Array());
    // A result of 127 bytes and one of 128: the element's own length crosses a varint boundary.
    const edge = create(BatchGetResponseSchema, { results: [get(true, bytes(123)), get(true, bytes(124))] });
    same(encodeBatch(edge), toBinary(BatchGetResponseSchema, edge));
  });

  it('leave a message with unknown fields or without value bytes to toBinary', () => {
    const unknown = [{ no: 9, wireType: 0, data: Uint8Array.of(1) }];
    const m: GetResponse = { ...get(true, bytes(3)), $unknown: unknown };
    expect(encodeGet(m)).toBeUndefined();
    const batch: BatchGetResponse = create(BatchGetResponseSchema, { results: [get(true), m] });
    expect(encodeBatch(batch)).toBeUndefined();
    const noValue = { $typeName: 'prism.data.v1.GetResponse', found: false } as unknown as GetResponse;
    expect(encodeGet(noValue)).toBeUndefined();
  });

  it('are what the KeyValue service definition serializes Get and BatchGet answers with', () => {
    const definition = grpcServiceDefinition(KeyValue);
    const m = create(BatchGetResponseSchema, { results: [get(true, bytes(5)), get(false)] });
    same(definition.batchGet!.responseSerialize(m), toBinary(BatchGetResponseSchema, m));
    const withUnknown: GetResponse = {
      ...get(true, bytes(2)),
      $unknown: [{ no: 9, wireType: 0, data: Uint8Array.of(1) }],
    };
    same(definition.get!.responseSerialize(withUnknown), toBinary(GetResponseSchema, withUnknown));
    const back = definition.get!.responseDeserialize(definition.get!.responseSerialize(get(true, bytes(4))));
    expect((back as GetResponse).found).toBe(true);
    same((back as GetResponse).value, bytes(4));
  });
});
