import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type * as kv from '../gen/prism/data/v1/keyvalue_pb.js';

/**
 * Protobuf encoding of the prism.data.v1.KeyValue messages the CLI's kv commands send and read,
 * written against proto/prism/data/v1/keyvalue.proto with protobuf-es's wire primitives and
 * without its descriptors: booting the generated file's descriptors costs more than the rest of
 * a `kv get` (bench/RESULTS.md). Requests encode to the same bytes as protobuf-es's toBinary
 * (defaults omitted, fields in number order); responses decode to the same objects as its
 * fromBinary, `$typeName` included; test/unit/client/kv-codec.test.ts holds both to that.
 */

/** `/prism.data.v1.KeyValue/<Method>` */
export const KV_PATH = {
  set: '/prism.data.v1.KeyValue/Set',
  get: '/prism.data.v1.KeyValue/Get',
  delete: '/prism.data.v1.KeyValue/Delete',
  exists: '/prism.data.v1.KeyValue/Exists',
  scan: '/prism.data.v1.KeyValue/Scan',
  getTtl: '/prism.data.v1.KeyValue/GetTtl',
} as const;

export function encodeSetRequest(key: string, value: Uint8Array, ttlSeconds: bigint): Uint8Array {
  const w = new BinaryWriter();
  if (key !== '') w.tag(1, WireType.LengthDelimited).string(key);
  if (value.length > 0) w.tag(2, WireType.LengthDelimited).bytes(value);
  if (ttlSeconds !== 0n) w.tag(3, WireType.Varint).uint64(ttlSeconds);
  return w.finish();
}

/** GetRequest, DeleteRequest, ExistsRequest and GetTtlRequest: `string key = 1`. */
export function encodeKeyRequest(key: string): Uint8Array {
  const w = new BinaryWriter();
  if (key !== '') w.tag(1, WireType.LengthDelimited).string(key);
  return w.finish();
}

export function encodeScanRequest(prefix: string, limit: number, cursor: string): Uint8Array {
  const w = new BinaryWriter();
  if (prefix !== '') w.tag(1, WireType.LengthDelimited).string(prefix);
  if (limit !== 0) w.tag(2, WireType.Varint).uint32(limit);
  if (cursor !== '') w.tag(3, WireType.LengthDelimited).string(cursor);
  return w.finish();
}

export function decodeSetResponse(bytes: Uint8Array): kv.SetResponse {
  const message: kv.SetResponse = { $typeName: 'prism.data.v1.SetResponse' };
  fields(bytes, () => false);
  return message;
}

export function decodeGetResponse(bytes: Uint8Array): kv.GetResponse {
  const message: kv.GetResponse = {
    $typeName: 'prism.data.v1.GetResponse',
    found: false,
    value: new Uint8Array(0),
  };
  fields(bytes, (no, type, r) => {
    if (no === 1 && type === WireType.Varint) message.found = r.bool();
    else if (no === 2 && type === WireType.LengthDelimited) message.value = r.bytes();
    else return false;
    return true;
  });
  return message;
}

export function decodeDeleteResponse(bytes: Uint8Array): kv.DeleteResponse {
  const message: kv.DeleteResponse = { $typeName: 'prism.data.v1.DeleteResponse', existed: false };
  fields(
    bytes,
    (no, type, r) => no === 1 && type === WireType.Varint && ((message.existed = r.bool()), true),
  );
  return message;
}

export function decodeExistsResponse(bytes: Uint8Array): kv.ExistsResponse {
  const message: kv.ExistsResponse = { $typeName: 'prism.data.v1.ExistsResponse', exists: false };
  fields(bytes, (no, type, r) => no === 1 && type === WireType.Varint && ((message.exists = r.bool()), true));
  return message;
}

export function decodeScanResponse(bytes: Uint8Array): kv.ScanResponse {
  const message: kv.ScanResponse = { $typeName: 'prism.data.v1.ScanResponse', keys: [], cursor: '' };
  fields(bytes, (no, type, r) => {
    if (type !== WireType.LengthDelimited) return false;
    if (no === 1) message.keys.push(r.string());
    else if (no === 2) message.cursor = r.string();
    else return false;
    return true;
  });
  return message;
}

export function decodeGetTtlResponse(bytes: Uint8Array): kv.GetTtlResponse {
  const message: kv.GetTtlResponse = { $typeName: 'prism.data.v1.GetTtlResponse', ttlMs: 0n };
  fields(bytes, (no, type, r) => {
    if (no !== 1 || type !== WireType.Varint) return false;
    message.ttlMs = BigInt(r.int64());
    return true;
  });
  return message;
}

/**
 * Reads every field of `bytes`, handing each to `read`; a field `read` does not take (unknown to
 * this codec, or of another wire type) is skipped (protobuf-es would keep it in `$unknown`, which
 * no caller of these messages reads).
 */
function fields(
  bytes: Uint8Array,
  read: (no: number, type: WireType, reader: BinaryReader) => boolean,
): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, type] = reader.tag();
    if (!read(no, type, reader)) reader.skip(type, no);
  }
}
