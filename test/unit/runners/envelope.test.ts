import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  EnvelopeSchema,
  SessionContextSchema,
  TraceContextSchema,
} from '../../../src/gen/prism/data/v1/envelope_pb.js';
import { decodeEnvelope, encodeEnvelope } from '../../../src/runners/envelope.js';
import { bytes } from './helpers.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function fullEnvelope() {
  return create(EnvelopeSchema, {
    messageId: '01890a5d-ac96-774b-bcce-b302099a8057',
    topic: 'orders.events',
    namespace: 'orders',
    publishedAtMs: 1_700_000_000_123n,
    contentType: 'application/json',
    correlationId: 'req-42',
    session: create(SessionContextSchema, {
      subject: 'user:alice',
      tenant: 'acme',
      roles: ['writer', 'ops,oncall'],
    }),
    trace: create(TraceContextSchema, { traceparent: TRACEPARENT, tracestate: 'vendor=1' }),
    headers: { 'x-order': '17' },
    payload: bytes('{"id":17}'),
  });
}

describe('envelope codec', () => {
  it('carries envelope fields in prism- headers and trace context in W3C headers', () => {
    const message = encodeEnvelope(fullEnvelope());
    expect(message.topic).toBe('orders.events');
    expect(message.payload).toEqual(bytes('{"id":17}'));
    expect(message.headers).toEqual({
      'prism-message-id': '01890a5d-ac96-774b-bcce-b302099a8057',
      'prism-namespace': 'orders',
      'prism-published-at-ms': '1700000000123',
      'prism-content-type': 'application/json',
      'prism-correlation-id': 'req-42',
      'prism-session-subject': 'user:alice',
      'prism-session-tenant': 'acme',
      'prism-session-roles': 'writer,ops%2Concall',
      traceparent: TRACEPARENT,
      tracestate: 'vendor=1',
      'x-order': '17',
    });
  });

  it('decodes what it encodes, field by field', () => {
    const original = fullEnvelope();
    const decoded = decodeEnvelope(encodeEnvelope(original), 3);
    expect(decoded.messageId).toBe(original.messageId);
    expect(decoded.topic).toBe('orders.events');
    expect(decoded.namespace).toBe('orders');
    expect(decoded.publishedAtMs).toBe(1_700_000_000_123n);
    expect(decoded.contentType).toBe('application/json');
    expect(decoded.correlationId).toBe('req-42');
    expect(decoded.session?.subject).toBe('user:alice');
    expect(decoded.session?.tenant).toBe('acme');
    expect(decoded.session?.roles).toEqual(['writer', 'ops,oncall']);
    expect(decoded.trace?.traceparent).toBe(TRACEPARENT);
    expect(decoded.trace?.tracestate).toBe('vendor=1');
    expect(decoded.headers).toEqual({ 'x-order': '17' });
    expect(decoded.payload).toEqual(bytes('{"id":17}'));
    expect(decoded.attempt).toBe(3);
  });

  it('decodes a message from a plain producer: payload and headers, empty envelope fields', () => {
    const decoded = decodeEnvelope({ topic: 't', payload: bytes('raw'), headers: { source: 'legacy' } });
    expect(decoded.payload).toEqual(bytes('raw'));
    expect(decoded.topic).toBe('t');
    expect(decoded.messageId).toBe('');
    expect(decoded.publishedAtMs).toBe(0n);
    expect(decoded.session).toBeUndefined();
    expect(decoded.trace).toBeUndefined();
    expect(decoded.headers).toEqual({ source: 'legacy' });
    expect(decoded.attempt).toBe(1);
  });

  it('leaves empty fields out of the headers', () => {
    const message = encodeEnvelope(create(EnvelopeSchema, { topic: 't', payload: bytes('p') }));
    expect(message.headers).toEqual({});
  });

  it.each(['prism-message-id', 'Prism-Custom', 'traceparent', 'has space', 'colon:name', ''])(
    'rejects the custom header name %j',
    (name) => {
      const envelope = create(EnvelopeSchema, { topic: 't', headers: { [name]: 'v' } });
      expect(() => encodeEnvelope(envelope)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
    },
  );

  it('rejects a header value with a line break', () => {
    const envelope = create(EnvelopeSchema, { topic: 't', headers: { note: 'a\r\nb' } });
    expect(() => encodeEnvelope(envelope)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });

  it('keeps unknown prism- headers (such as the dead-letter reason) on decode', () => {
    const decoded = decodeEnvelope({
      topic: 't.dead-letter',
      payload: bytes('p'),
      headers: { 'prism-message-id': 'm1', 'prism-dead-letter-reason': 'boom' },
    });
    expect(decoded.messageId).toBe('m1');
    expect(decoded.headers).toEqual({ 'prism-dead-letter-reason': 'boom' });
  });
});
