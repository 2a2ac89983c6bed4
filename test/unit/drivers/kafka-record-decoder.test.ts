/**
 * The lean Kafka record decoder (src/drivers/kafka/record-decoder.ts) returns what kafkajs 2.2.4's
 * own record decoder returns, field for field, and reads exactly as many bytes: for keys and values
 * present and missing, repeated and unicode headers, timestamp deltas of every varint length
 * (past 7 bytes it falls back to kafkajs's Long), offsets and timestamps past 2^53, log-append
 * time and control batches. Records are written by the record encoder, itself compared byte for
 * byte with kafkajs's (kafka-record-encoder.test.ts). This process never installs the decoder, so
 * `require` gives kafkajs's module.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { leanRecordDecoder, type KafkajsBatchContext } from '../../../src/drivers/kafka/record-decoder.js';
import { encodeRecordBytes, type KafkajsRecordInput } from '../../../src/drivers/kafka/record-encoder.js';

const require = createRequire(import.meta.url);
type Decoder = { offset: number; readVarIntBytes(): Buffer };
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => Decoder;
const kafkajsRecordDecoder = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js') as (
  decoder: Decoder,
  context: KafkajsBatchContext,
) => unknown;

const context = (over: Partial<KafkajsBatchContext> = {}): KafkajsBatchContext => ({
  firstOffset: '41',
  firstTimestamp: '1764900000000',
  magicByte: 2,
  isControlBatch: false,
  timestampType: 0,
  maxTimestamp: '1764900000999',
  ...over,
});

const envelope = {
  'prism-message-id': '0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b',
  'prism-namespace': 'orders',
  'prism-published-at-ms': '1764900000000',
  'prism-session-tenant': '',
};

const cases: Array<[string, KafkajsRecordInput, KafkajsBatchContext]> = [
  [
    'a value with a Prism envelope',
    { offsetDelta: 3, value: Buffer.alloc(256, 97), headers: envelope },
    context(),
  ],
  ['no key, value or headers', {}, context()],
  ['a key and an empty value', { key: 'k-1', value: Buffer.alloc(0) }, context()],
  [
    'repeated and unicode headers',
    { value: 'v', headers: { tag: ['a', 'b', 'c'], ключ: 'значение ✓' } },
    context(),
  ],
  ['a header twice', { value: 'v', headers: { tag: ['only', 'twice'] } }, context()],
  ['a negative timestamp delta', { timestampDelta: -1234, value: 'v' }, context()],
  ['a 7-byte timestamp delta', { timestampDelta: 2 ** 47, value: 'v' }, context()],
  ['an 8-byte timestamp delta (kafkajs Long)', { timestampDelta: 2 ** 50 + 7, value: 'v' }, context()],
  ['an offset past 2^53', { offsetDelta: 9, value: 'v' }, context({ firstOffset: '9007199254740990' })],
  [
    'a timestamp past 2^53',
    { timestampDelta: 5, value: 'v' },
    context({ firstTimestamp: '9007199254740993' }),
  ],
  ['no first timestamp (-1)', { timestampDelta: 0, value: 'v' }, context({ firstTimestamp: '-1' })],
  ['log-append time', { timestampDelta: 77, value: 'v' }, context({ timestampType: 1 })],
  ['a control batch', { value: 'v' }, context({ isControlBatch: true })],
];

describe('leanRecordDecoder', () => {
  it.each(cases)('returns what kafkajs returns: %s', (_name, input, ctx) => {
    const body = new Decoder(encodeRecordBytes(input)).readVarIntBytes();
    const theirs = new Decoder(body);
    const ours = new Decoder(body);
    expect(leanRecordDecoder(ours as never, ctx)).toEqual(kafkajsRecordDecoder(theirs, ctx));
    expect(ours.offset).toBe(body.length);
    expect(theirs.offset).toBe(body.length);
  });

  it('keeps a header named like an Object.prototype member as its value', () => {
    const body = new Decoder(
      encodeRecordBytes({ value: 'v', headers: { toString: 'x', ['__proto__']: 'y' } }),
    ).readVarIntBytes();
    const record = leanRecordDecoder(new Decoder(body) as never, context());
    expect(Object.keys(record.headers)).toEqual(['toString', '__proto__']);
    expect(String(record.headers['toString'])).toBe('x');
    expect(Object.getOwnPropertyDescriptor(record.headers, '__proto__')?.value?.toString()).toBe('y');
    expect(Object.getPrototypeOf(record.headers)).toBe(Object.prototype);
  });
});
