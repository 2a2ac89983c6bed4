/**
 * Subscribe's answer with a large payload (a claim-checked message, up to --max-message-size),
 * encoded with one copy of the payload. protobuf-es `toBinary` copies a nested message's bytes
 * once per level when it closes it (Envelope inside SubscribeResponse: the payload twice), and
 * grpc-js copies the result once more behind its frame header; measured for 100 MiB, the two
 * protobuf-es copies and their page faults were about half of the proxy's CPU for a delivery.
 * This writes the same bytes as `toBinary`: the envelope without its payload is encoded by
 * protobuf-es, and the payload field (10) goes in before the first field numbered above it, as
 * toBinary writes fields in number order. A payload under LARGE_PAYLOAD_BYTES, or a message with
 * unknown fields, returns undefined, so the caller falls back to `toBinary`.
 *
 * A payload allocated with `allocateDeliveryPayload` (the claim check's fetched objects) has room
 * before and after it in its ArrayBuffer: the fields around it are written there, and the encoded
 * message is a view of that memory, with no copy of the payload at all. That room belongs to the
 * payload's delivery: each encode rewrites it, so the view is good until the next encode of the
 * same payload. grpc-js copies it into its frame at once; the proxy's own Subscribe path
 * (grpc-http2-server.ts) writes the view itself, so a payload is encoded for one delivery (the
 * claim check opens the object again for each).
 */
import { toBinary } from '@bufbuild/protobuf';
import { EnvelopeSchema, type Envelope } from '../gen/prism/data/v1/envelope_pb.js';
import { SubscribeResponseSchema, type SubscribeResponse } from '../gen/prism/data/v1/messaging_pb.js';
import { readVarint, varintSize, writeVarint } from './varint.js';

/** Payloads from this size are encoded here; smaller ones cost toBinary little. */
export const LARGE_PAYLOAD_BYTES = 64 * 1024;

/** Room before a delivery payload for the fields written ahead of it (the envelope's headers). */
export const DELIVERY_HEAD_ROOM = 16 * 1024;
/** Room after it: the envelope's last fields, delivery and subscription ids. */
export const DELIVERY_TAIL_ROOM = 1024;

/** ArrayBuffers of allocateDeliveryPayload, and their payload's length (it starts at the head room). */
const framed = new WeakMap<ArrayBufferLike, number>();

/**
 * `size` bytes to fill with a payload that will be delivered (uninitialised memory): from
 * LARGE_PAYLOAD_BYTES on with room around it, so encodeLargeSubscribeResponse writes around it
 * instead of copying it.
 */
export function allocateDeliveryPayload(size: number): Uint8Array {
  if (size < LARGE_PAYLOAD_BYTES) return Buffer.allocUnsafeSlow(size);
  const buffer = Buffer.allocUnsafeSlow(DELIVERY_HEAD_ROOM + size + DELIVERY_TAIL_ROOM).buffer;
  framed.set(buffer, size);
  return new Uint8Array(buffer, DELIVERY_HEAD_ROOM, size);
}

const MESSAGE_TAG = 0x0a; // SubscribeResponse.message: field 1, length-delimited
const PAYLOAD_FIELD = 10; // Envelope.payload
const PAYLOAD_TAG = (PAYLOAD_FIELD << 3) | 2;
const EMPTY = new Uint8Array(0);

/** Offset of the first top-level field numbered above PAYLOAD_FIELD (or the end). */
function payloadOffset(fields: Uint8Array): number | undefined {
  let offset = 0;
  while (offset < fields.byteLength) {
    const [tag, next] = readVarint(fields, offset);
    if (tag >>> 3 > PAYLOAD_FIELD) return offset;
    offset = next;
    switch (tag & 7) {
      case 0:
        offset = readVarint(fields, offset)[1];
        break;
      case 1:
        offset += 8;
        break;
      case 2: {
        const [length, start] = readVarint(fields, offset);
        offset = start + length;
        break;
      }
      case 5:
        offset += 4;
        break;
      default:
        return undefined;
    }
  }
  return offset;
}

function plain(message: { $unknown?: unknown[] | undefined }): boolean {
  return message.$unknown === undefined || message.$unknown.length === 0;
}

/** SubscribeResponse's bytes (as toBinary writes them), or undefined to fall back to toBinary. */
export function encodeLargeSubscribeResponse(value: unknown): Buffer | undefined {
  const m = value as SubscribeResponse;
  const envelope = m.message;
  if (envelope === undefined || !(envelope.payload instanceof Uint8Array)) return undefined;
  const payload = envelope.payload;
  if (payload.byteLength < LARGE_PAYLOAD_BYTES || !plain(m) || !plain(envelope)) return undefined;
  const fields = toBinary(EnvelopeSchema, { ...envelope, payload: EMPTY } as Envelope);
  const split = payloadOffset(fields);
  if (split === undefined) return undefined;
  const tail = toBinary(SubscribeResponseSchema, { ...m, message: undefined } as SubscribeResponse);
  const payloadField = 1 + varintSize(payload.byteLength) + payload.byteLength;
  const envelopeSize = fields.byteLength + payloadField;
  const before = 1 + varintSize(envelopeSize) + split + 1 + varintSize(payload.byteLength);
  const after = fields.byteLength - split + tail.byteLength;
  const end = payload.byteOffset + payload.byteLength;
  // Only the whole payload: the room around a part of it is the rest of the payload.
  const inPlace =
    framed.get(payload.buffer) === payload.byteLength &&
    payload.byteOffset === DELIVERY_HEAD_ROOM &&
    before <= payload.byteOffset &&
    end + after <= payload.buffer.byteLength;
  const buf = inPlace
    ? Buffer.from(payload.buffer, payload.byteOffset - before, before + payload.byteLength + after)
    : Buffer.allocUnsafe(before + payload.byteLength + after);
  let offset = 0;
  buf[offset++] = MESSAGE_TAG;
  offset = writeVarint(buf, offset, envelopeSize);
  buf.set(fields.subarray(0, split), offset);
  offset += split;
  buf[offset++] = PAYLOAD_TAG;
  offset = writeVarint(buf, offset, payload.byteLength);
  if (!inPlace) buf.set(payload, offset);
  offset += payload.byteLength;
  buf.set(fields.subarray(split), offset);
  offset += fields.byteLength - split;
  buf.set(tail, offset);
  return buf;
}
