/**
 * Kafka's record (the v2 record format of a record batch) encoded into one buffer, in place of
 * kafkajs 2.2.4's `recordBatch/record/v0` module.
 *
 * kafkajs encodes a record from one small `Encoder` for the record and one more for each header,
 * and each of those allocates a zero-filled 512-byte buffer; every varint becomes an array and a
 * `Buffer.from` of it. A record with a Prism envelope's six headers costs about 12 µs of CPU here,
 * the largest single part of what the proxy spends producing to Kafka (bench/RESULTS.md, session
 * 17). This encoder computes the record's size first and writes it into one buffer from Node's
 * pool: the same bytes (test/unit/drivers/kafka-record-encoder.test.ts compares them with
 * kafkajs's own for keys, values and headers of every kind).
 *
 * Record => Length:varint Attributes:int8 TimestampDelta:varlong OffsetDelta:varint
 *           Key:varint-length bytes  Value:varint-length bytes
 *           [Header => Key:varint-length string  Value:varint-length bytes]
 * A missing key, value or header value is length -1. Varints are zigzag LEB128.
 *
 * It takes the place of kafkajs's record module before kafkajs first loads it, at the first
 * produce (kafkajs-module.ts), so kafkajs's RecordBatch takes its records from here.
 */
import { createRequire } from 'node:module';
import { replaceKafkajsModule } from './kafkajs-module.js';

/** A record as kafkajs's produce request hands it to the Record module. */
export interface KafkajsRecordInput {
  offsetDelta?: number;
  timestampDelta?: number;
  key?: unknown;
  value?: unknown;
  headers?: Record<string, unknown>;
}

/** The part of kafkajs's Encoder that RecordBatch reads from a record: `buf` and `buffer`. */
interface EncoderLike {
  buf: Buffer;
  offset: number;
}

/** Zigzag: small negative and positive integers both become small unsigned ones. */
const zigzag = (n: number): number => (n >= 0 ? n * 2 : -n * 2 - 1);

function sizeOfUnsignedVarint(u: number): number {
  let bytes = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 0x80);
    bytes++;
  }
  return bytes;
}

function writeUnsignedVarint(buf: Buffer, at: number, u: number): number {
  while (u >= 0x80) {
    buf[at++] = (u % 0x80) | 0x80;
    u = Math.floor(u / 0x80);
  }
  buf[at++] = u;
  return at;
}

/** kafkajs's Long.fromValue of a number: NaN is 0, fractions are cut toward zero. */
const toInteger = (n: number): number => (Number.isNaN(n) ? 0 : Math.trunc(n));

/**
 * A key, value or header value as kafkajs writes it: a Buffer as it is, null or undefined as
 * missing, anything else as the UTF-8 of its string form.
 */
type Field = Buffer | string | null;
const fieldOf = (value: unknown): Field =>
  value == null ? null : Buffer.isBuffer(value) ? value : String(value as string);
const lengthOf = (field: Field): number =>
  field === null ? -1 : typeof field === 'string' ? Buffer.byteLength(field, 'utf8') : field.length;

function writeField(buf: Buffer, at: number, field: Field, length: number): number {
  at = writeUnsignedVarint(buf, at, zigzag(length));
  if (field === null) return at;
  if (typeof field === 'string') buf.write(field, at, length, 'utf8');
  else field.copy(buf, at);
  return at + length;
}

/** The record's bytes, Length prefix included. */
export function encodeRecordBytes({
  offsetDelta = 0,
  timestampDelta = 0,
  key,
  value,
  headers = {},
}: KafkajsRecordInput): Buffer {
  const headerKeys: string[] = [];
  const headerValues: Field[] = [];
  for (const name of Object.keys(headers)) {
    const given = headers[name];
    for (const one of Array.isArray(given) ? (given as unknown[]) : [given]) {
      headerKeys.push(name);
      headerValues.push(fieldOf(one));
    }
  }
  const timestamp = zigzag(toInteger(timestampDelta));
  const offset = zigzag(offsetDelta);
  const keyField = fieldOf(key);
  const valueField = fieldOf(value);
  const keyLength = lengthOf(keyField);
  const valueLength = lengthOf(valueField);
  const headerKeyLengths = headerKeys.map((k) => Buffer.byteLength(k, 'utf8'));
  const headerValueLengths = headerValues.map(lengthOf);

  let body =
    1 +
    sizeOfUnsignedVarint(timestamp) +
    sizeOfUnsignedVarint(offset) +
    sizeOfUnsignedVarint(zigzag(keyLength)) +
    Math.max(keyLength, 0) +
    sizeOfUnsignedVarint(zigzag(valueLength)) +
    Math.max(valueLength, 0) +
    sizeOfUnsignedVarint(zigzag(headerKeys.length));
  for (let i = 0; i < headerKeys.length; i++) {
    body += sizeOfUnsignedVarint(zigzag(headerKeyLengths[i]!)) + headerKeyLengths[i]!;
    body += sizeOfUnsignedVarint(zigzag(headerValueLengths[i]!)) + Math.max(headerValueLengths[i]!, 0);
  }

  const buf = Buffer.allocUnsafe(sizeOfUnsignedVarint(zigzag(body)) + body);
  let at = writeUnsignedVarint(buf, 0, zigzag(body));
  buf[at++] = 0; // attributes: none are used on a record
  at = writeUnsignedVarint(buf, at, timestamp);
  at = writeUnsignedVarint(buf, at, offset);
  at = writeField(buf, at, keyField, keyLength);
  at = writeField(buf, at, valueField, valueLength);
  at = writeUnsignedVarint(buf, at, zigzag(headerKeys.length));
  for (let i = 0; i < headerKeys.length; i++) {
    at = writeField(buf, at, headerKeys[i]!, headerKeyLengths[i]!);
    at = writeField(buf, at, headerValues[i]!, headerValueLengths[i]!);
  }
  return buf;
}

/** kafkajs's Encoder, whose prototype a record is given so RecordBatch can write it. */
let encoderPrototype: object | undefined;

/** What kafkajs's record module exports: the record as an Encoder holding its bytes. */
export function oneBufferRecord(input: KafkajsRecordInput): EncoderLike {
  encoderPrototype ??= (
    createRequire(import.meta.url)('kafkajs/src/protocol/encoder.js') as { prototype: object }
  ).prototype;
  const encoder = Object.create(encoderPrototype) as EncoderLike;
  encoder.buf = encodeRecordBytes(input);
  encoder.offset = encoder.buf.length;
  return encoder;
}

/** Puts `oneBufferRecord` in place of kafkajs's record module, once per process; true when it took. */
export const useOneBufferKafkaRecords = (): boolean =>
  replaceKafkajsModule('src/protocol/recordBatch/record/v0/index.js', oneBufferRecord);
