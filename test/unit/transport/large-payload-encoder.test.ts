import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  EnvelopeSchema,
  SessionContextSchema,
  TraceContextSchema,
} from '../../../src/gen/prism/data/v1/envelope_pb.js';
import { Consumer, SubscribeResponseSchema } from '../../../src/gen/prism/data/v1/messaging_pb.js';
import {
  allocateDeliveryPayload,
  DELIVERY_HEAD_ROOM,
  DELIVERY_TAIL_ROOM,
  encodeLargeSubscribeResponse,
  LARGE_PAYLOAD_BYTES,
} from '../../../src/transport/large-payload-encoder.js';
import { grpcServiceDefinition } from '../../../src/transport/service-definition.js';

// Buffer.equals, not toEqual: a deep comparison of megabytes takes a minute.
const same = (a: Uint8Array | undefined, b: Uint8Array) => {
  expect(a).toBeDefined();
  expect(a!.byteLength).toBe(b.byteLength);
  expect(Buffer.from(a!).equals(Buffer.from(b))).toBe(true);
};

function payloadOf(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31) & 0xff;
  return bytes;
}

/** A delivery with every envelope field set, fields after the payload (attempt, schema) included. */
function delivery(size: number) {
  return create(SubscribeResponseSchema, {
    deliveryId: 'd-1',
    subscriptionId: 's-1',
    message: create(EnvelopeSchema, {
      messageId: '0190c6b2-7c1e-7b3a-9f00-000000000001',
      topic: 'files',
      namespace: 'claims',
      publishedAtMs: 1_764_000_000_000n,
      contentType: 'application/pdf',
      correlationId: 'c-9',
      session: create(SessionContextSchema, { subject: 'alice', tenant: 't', roles: ['writer'] }),
      trace: create(TraceContextSchema, {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      }),
      headers: { 'x-a': '1', 'x-b': 'two' },
      payload: payloadOf(size),
      attempt: 3,
      schemaId: 7,
      schemaVersion: 2,
    }),
  });
}

describe("Subscribe's encoder for large payloads", () => {
  // Sizes on both sides of the threshold and of the payload length's varint size boundaries.
  const sizes = [LARGE_PAYLOAD_BYTES, 2_097_151, 2_097_152, 5 * 1024 * 1024 + 3];

  it('writes a SubscribeResponse byte for byte as protobuf-es toBinary does', () => {
    for (const size of sizes)
      same(encodeLargeSubscribeResponse(delivery(size)), toBinary(SubscribeResponseSchema, delivery(size)));
  });

  it('writes the same bytes when the envelope has no fields after the payload, or only the payload', () => {
    const bare = delivery(LARGE_PAYLOAD_BYTES);
    bare.message!.attempt = 0;
    bare.message!.schemaId = 0;
    bare.message!.schemaVersion = 0;
    same(encodeLargeSubscribeResponse(bare), toBinary(SubscribeResponseSchema, bare));
    const only = create(SubscribeResponseSchema, {
      message: { payload: payloadOf(LARGE_PAYLOAD_BYTES + 1) },
    });
    same(encodeLargeSubscribeResponse(only), toBinary(SubscribeResponseSchema, only));
  });

  it('decodes back to the delivery', () => {
    const sent = delivery(LARGE_PAYLOAD_BYTES * 3);
    const back = fromBinary(SubscribeResponseSchema, encodeLargeSubscribeResponse(sent)!);
    expect(back.deliveryId).toBe('d-1');
    expect(back.message!.attempt).toBe(3);
    expect(back.message!.headers).toEqual({ 'x-a': '1', 'x-b': 'two' });
    same(back.message!.payload, sent.message!.payload);
  });

  it('leaves smaller payloads and messages with unknown fields to toBinary', () => {
    expect(encodeLargeSubscribeResponse(delivery(LARGE_PAYLOAD_BYTES - 1))).toBeUndefined();
    expect(
      encodeLargeSubscribeResponse(create(SubscribeResponseSchema, { deliveryId: 'd' })),
    ).toBeUndefined();
    const unknown = delivery(LARGE_PAYLOAD_BYTES);
    unknown.message!.$unknown = [{ no: 99, wireType: 0, data: new Uint8Array([1]) }];
    expect(encodeLargeSubscribeResponse(unknown)).toBeUndefined();
  });

  it('writes around a payload from allocateDeliveryPayload, in its memory, the same bytes each time', () => {
    for (const size of sizes) {
      const payload = allocateDeliveryPayload(size);
      payload.set(payloadOf(size));
      const sent = delivery(size);
      sent.message!.payload = payload;
      const first = encodeLargeSubscribeResponse(sent)!;
      same(first, toBinary(SubscribeResponseSchema, sent));
      expect(first.buffer).toBe(payload.buffer);
      // Another delivery of the same payload rewrites the fields around it.
      sent.deliveryId = 'd-2 of a longer id';
      same(encodeLargeSubscribeResponse(sent), toBinary(SubscribeResponseSchema, sent));
      same(payload, payloadOf(size));
    }
  });

  it('copies a payload from allocateDeliveryPayload whose fields do not fit the room around it', () => {
    const payload = allocateDeliveryPayload(LARGE_PAYLOAD_BYTES);
    payload.set(payloadOf(LARGE_PAYLOAD_BYTES));
    const sent = delivery(LARGE_PAYLOAD_BYTES);
    sent.message!.payload = payload;
    sent.message!.headers = { big: 'h'.repeat(DELIVERY_HEAD_ROOM) };
    const before = encodeLargeSubscribeResponse(sent)!;
    expect(before.buffer).not.toBe(payload.buffer);
    same(before, toBinary(SubscribeResponseSchema, sent));
    sent.message!.headers = {};
    sent.subscriptionId = 's'.repeat(DELIVERY_TAIL_ROOM);
    const after = encodeLargeSubscribeResponse(sent)!;
    expect(after.buffer).not.toBe(payload.buffer);
    same(after, toBinary(SubscribeResponseSchema, sent));
    // A view of part of it is no payload of its own: copied too, the rest left as it was.
    sent.subscriptionId = 's-1';
    const larger = allocateDeliveryPayload(LARGE_PAYLOAD_BYTES + 2);
    larger.set(payloadOf(LARGE_PAYLOAD_BYTES + 2));
    for (const part of [larger.subarray(1), larger.subarray(0, LARGE_PAYLOAD_BYTES + 1)]) {
      sent.message!.payload = part;
      const encoded = encodeLargeSubscribeResponse(sent)!;
      expect(encoded.buffer).not.toBe(larger.buffer);
      same(encoded, toBinary(SubscribeResponseSchema, sent));
    }
    same(larger, payloadOf(LARGE_PAYLOAD_BYTES + 2));
  });

  it("is the Consumer service's Subscribe serializer, small payloads included", () => {
    const serialize = grpcServiceDefinition(Consumer).subscribe!.responseSerialize;
    for (const size of [0, 100, LARGE_PAYLOAD_BYTES])
      same(serialize(delivery(size)), toBinary(SubscribeResponseSchema, delivery(size)));
  });
});
