/** The schema stamp in the envelope: prism-schema-id / prism-schema-version ↔ Envelope fields 12–13. */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { EnvelopeSchema } from '../../../src/gen/prism/data/v1/envelope_pb.js';
import { decodeEnvelope, encodeEnvelope, withSchema } from '../../../src/runners/envelope.js';
import { bytes } from './helpers.js';

const plain = () =>
  encodeEnvelope(create(EnvelopeSchema, { messageId: 'm-1', topic: 'orders.events', payload: bytes('{}') }));

describe('the schema stamp', () => {
  it('travels as prism-schema-id and prism-schema-version and decodes into schema_id and schema_version', () => {
    const stamped = withSchema(plain(), 42, 3);
    expect(stamped.headers).toEqual({
      'prism-message-id': 'm-1',
      'prism-schema-id': '42',
      'prism-schema-version': '3',
    });
    const envelope = decodeEnvelope(stamped);
    expect([envelope.schemaId, envelope.schemaVersion]).toEqual([42, 3]);
    expect(envelope.headers).toEqual({});
  });

  it('round-trips through encodeEnvelope, which leaves out a zero stamp', () => {
    const envelope = create(EnvelopeSchema, { messageId: 'm-2', topic: 't', schemaId: 7, schemaVersion: 1 });
    expect(decodeEnvelope(encodeEnvelope(envelope))).toMatchObject({ schemaId: 7, schemaVersion: 1 });
    expect(Object.keys(plain().headers)).toEqual(['prism-message-id']);
  });

  it('decodes a missing or malformed stamp as 0', () => {
    expect(decodeEnvelope(plain())).toMatchObject({ schemaId: 0, schemaVersion: 0 });
    const odd = { ...plain(), headers: { 'prism-schema-id': 'x1', 'prism-schema-version': '99999999999' } };
    expect(decodeEnvelope(odd)).toMatchObject({ schemaId: 0, schemaVersion: 0, headers: {} });
  });
});
