/** What the mailbox stores of an envelope, and what it gives back. */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  EnvelopeSchema,
  SessionContextSchema,
  TraceContextSchema,
} from '../../../src/gen/prism/data/v1/envelope_pb.js';
import { toMessage, toRecord } from '../../../src/runners/mailbox/records.js';
import { isUuidV7 } from '../../../src/runners/uuid.js';

const STORED_AT = 1_764_000_000_000;

const envelope = () =>
  create(EnvelopeSchema, {
    messageId: 'm-1',
    topic: 'orders.events',
    namespace: 'orders',
    publishedAtMs: 1_763_999_999_000n,
    contentType: 'application/json',
    correlationId: 'checkout-7',
    session: create(SessionContextSchema, { subject: 'user:alice', tenant: 'acme', roles: ['writer'] }),
    trace: create(TraceContextSchema, {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    }),
    headers: { 'order-id': '42', note: 'x' },
    payload: new Uint8Array([0, 1, 255]),
    attempt: 3,
  });

describe('mailbox records', () => {
  it('indexes the envelope fields and gives every field back as received, attempt 0', () => {
    const record = toRecord(envelope(), STORED_AT, 1024);
    expect({ ...record, meta: undefined }).toEqual({
      messageId: 'm-1',
      topic: 'orders.events',
      publishedAtMs: 1_763_999_999_000,
      storedAtMs: STORED_AT,
      correlationId: 'checkout-7',
      subject: 'user:alice',
      tenant: 'acme',
      headers: { 'order-id': '42', note: 'x' },
      meta: undefined,
      payload: new Uint8Array([0, 1, 255]),
      payloadSize: 3,
      payloadOmitted: false,
    });
    const message = toMessage({ ...record, seq: 1 });
    expect(message.envelope).toEqual({ ...envelope(), attempt: 0 });
    expect([message.storedAtMs, message.payloadSize, message.payloadOmitted]).toEqual([
      BigInt(STORED_AT),
      3n,
      false,
    ]);
  });

  it('gives a message without id a UUIDv7 and one without a published time the time it was stored', () => {
    const record = toRecord(
      create(EnvelopeSchema, { topic: 'orders.events', payload: new Uint8Array([1]) }),
      STORED_AT,
      1024,
    );
    expect(isUuidV7(record.messageId)).toBe(true);
    expect(record.publishedAtMs).toBe(STORED_AT);
    const back = toMessage({ ...record, seq: 1 }).envelope!;
    expect([back.messageId, back.publishedAtMs]).toEqual([record.messageId, BigInt(STORED_AT)]);
  });

  it('leaves out a payload above max_message_size and keeps its size; one at the limit is kept', () => {
    const big = toRecord(
      create(EnvelopeSchema, { messageId: 'b', payload: new Uint8Array(11) }),
      STORED_AT,
      10,
    );
    const limit = toRecord(
      create(EnvelopeSchema, { messageId: 'l', payload: new Uint8Array(10) }),
      STORED_AT,
      10,
    );
    expect([big.payload.length, big.payloadSize, big.payloadOmitted]).toEqual([0, 11, true]);
    expect([limit.payload.length, limit.payloadSize, limit.payloadOmitted]).toEqual([10, 10, false]);
  });
});
