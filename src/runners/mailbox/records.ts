/**
 * Envelope ⇄ mailbox record. The store indexes the fields Query filters on and keeps the rest of
 * the envelope as opaque bytes (`meta`: the envelope without payload and custom headers, in
 * protobuf binary), so every field a publisher set comes back as it was received.
 */
import { clone, create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { MailboxRecord, StoredMailboxRecord } from '../../drivers/interfaces.js';
import { EnvelopeSchema, type Envelope } from '../../gen/prism/data/v1/envelope_pb.js';
import { MailboxMessageSchema, type MailboxMessage } from '../../gen/prism/data/v1/mailbox_pb.js';
import { uuidv7 } from '../uuid.js';

const EMPTY = new Uint8Array();

/**
 * The record of a received envelope: a message without an id gets a UUIDv7, one without a
 * published time the time it is stored; a payload above `maxMessageSize` is left out.
 */
export function toRecord(received: Envelope, storedAtMs: number, maxMessageSize: number): MailboxRecord {
  const envelope = clone(EnvelopeSchema, received);
  if (envelope.messageId === '') envelope.messageId = uuidv7(storedAtMs);
  if (envelope.publishedAtMs === 0n) envelope.publishedAtMs = BigInt(storedAtMs);
  envelope.attempt = 0;
  const payload = envelope.payload;
  const omitted = payload.byteLength > maxMessageSize;
  const headers = envelope.headers;
  envelope.payload = EMPTY;
  envelope.headers = {};
  return {
    messageId: envelope.messageId,
    topic: envelope.topic,
    publishedAtMs: Number(envelope.publishedAtMs),
    storedAtMs,
    correlationId: envelope.correlationId,
    subject: envelope.session?.subject ?? '',
    tenant: envelope.session?.tenant ?? '',
    headers,
    meta: toBinary(EnvelopeSchema, envelope),
    payload: omitted ? EMPTY : payload,
    payloadSize: payload.byteLength,
    payloadOmitted: omitted,
  };
}

/** The stored message as the Mailbox service returns it. */
export function toMessage(record: StoredMailboxRecord): MailboxMessage {
  const envelope = fromBinary(EnvelopeSchema, record.meta);
  envelope.headers = { ...record.headers };
  envelope.payload = record.payload;
  return create(MailboxMessageSchema, {
    envelope,
    storedAtMs: BigInt(record.storedAtMs),
    payloadSize: BigInt(record.payloadSize),
    payloadOmitted: record.payloadOmitted,
  });
}
