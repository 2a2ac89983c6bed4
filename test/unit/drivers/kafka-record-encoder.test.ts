/**
 * The one-buffer Kafka record encoder (src/drivers/kafka/record-encoder.ts) writes the same bytes
 * as kafkajs 2.2.4's own Record module, for the records kafkajs accepts: keys and values as
 * Buffers, strings or missing; headers with string, Buffer, empty and repeated (array) values;
 * unicode; lengths and deltas whose varints take one to several bytes. This process never
 * installs the encoder, so `require` gives kafkajs's module.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { encodeRecordBytes, type KafkajsRecordInput } from '../../../src/drivers/kafka/record-encoder.js';

const require = createRequire(import.meta.url);
const kafkajsRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (
  input: KafkajsRecordInput,
) => { buffer: Buffer };

const envelope = {
  'prism-message-id': '0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b',
  'prism-namespace': 'orders',
  'prism-published-at-ms': '1764900000000',
  'prism-session-subject': 'anonymous',
  'prism-session-tenant': '',
  'prism-session-roles': '',
};

const cases: Array<[string, KafkajsRecordInput]> = [
  ['a Buffer value with a Prism envelope', { value: Buffer.alloc(256, 97), headers: envelope }],
  ['no key, value or headers', {}],
  ['an empty value', { value: Buffer.alloc(0) }],
  ['a string key and value', { key: 'order-17', value: 'hello' }],
  ['a Buffer key', { key: Buffer.from([0, 1, 2, 255]), value: Buffer.from('x') }],
  [
    'unicode keys, values and header names',
    { key: 'ключ', value: 'значение ✓', headers: { заголовок: 'ü€😀' } },
  ],
  ['Buffer header values', { value: Buffer.from('v'), headers: { trace: Buffer.from([9, 8, 7]) } }],
  ['a repeated header', { value: Buffer.from('v'), headers: { tag: ['a', 'b', Buffer.from('c')] } }],
  ['offset and timestamp deltas', { offsetDelta: 31, timestampDelta: 1234, value: Buffer.from('v') }],
  ['a negative timestamp delta', { offsetDelta: 1, timestampDelta: -5, value: Buffer.from('v') }],
  ['a timestamp delta past 2^32', { timestampDelta: 2 ** 40 + 3, value: Buffer.from('v') }],
  ['varint lengths of two and three bytes', { key: 'k'.repeat(200), value: Buffer.alloc(70_000, 1) }],
  ['a value over the pool size', { value: Buffer.alloc(5_000, 2), headers: envelope }],
];

describe('encodeRecordBytes', () => {
  it.each(cases)('writes what kafkajs writes: %s', (_name, input) => {
    expect(encodeRecordBytes(input).equals(kafkajsRecord(input).buffer)).toBe(true);
  });
});
