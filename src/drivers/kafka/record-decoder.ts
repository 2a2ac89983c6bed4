/**
 * Kafka's record (the v2 record format) decoded without kafkajs's per-record `Long` arithmetic, in
 * place of kafkajs 2.2.4's `recordBatch/record/v0/decoder` module.
 *
 * For every fetched record kafkajs parses the batch's first offset and first timestamp from their
 * strings into `Long`s, adds the record's deltas and prints them back (`Long.fromString` was one of
 * the proxy's busiest functions on a Kafka stream), reads the timestamp delta through three `Long`s
 * a byte, and builds the headers object by spreading it once per header. This module returns the
 * same record object, field for field (test/unit/drivers/kafka-record-decoder.test.ts compares it
 * with kafkajs's on records of every kind): it reads through kafkajs's own Decoder methods, keeps
 * the batch's first offset and timestamp as numbers once per batch, and adds in numbers while the
 * sums are exact (below 2^53), in BigInt otherwise. One difference, on purpose: a header named
 * like a member of Object.prototype ("constructor", "toString", "__proto__") is its value here;
 * kafkajs's `obj[key] === undefined` test finds the inherited member and returns it beside the
 * value in an array.
 *
 * It takes the place of kafkajs's module before kafkajs first loads it, at the first fetch
 * (kafkajs-module.ts).
 */
import { replaceKafkajsModule } from './kafkajs-module.js';

/** The kafkajs Decoder methods a record is read with. */
interface KafkajsDecoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readVarInt(): number;
  readVarLong(): { toString(): string };
  readVarIntBytes(): Buffer | null;
  readVarIntString(): string | null;
}

/** What kafkajs's batch decoder hands each record (recordBatch/v0/decoder.js). */
export interface KafkajsBatchContext {
  firstOffset?: string;
  firstTimestamp?: string;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
  maxTimestamp?: string;
}

/** kafkajs's TimestampTypes.LOG_APPEND_TIME. */
const LOG_APPEND_TIME = 1;

/** An int64 from kafkajs's string form, as a number when it is exact as one. */
const int64Of = (text: string | undefined): number | bigint => {
  const n = Number(text ?? 0);
  return Number.isSafeInteger(n) ? n : BigInt(text ?? 0);
};

/** The string of base + delta, exact for any int64. */
function plus(base: number | bigint, delta: number | bigint): string {
  if (typeof base === 'number' && typeof delta === 'number') {
    const sum = base + delta;
    if (Number.isSafeInteger(sum)) return String(sum);
  }
  return (BigInt(base) + BigInt(delta)).toString();
}

/** A zigzag varlong, as a number when it has at most 7 bytes (49 bits), else from kafkajs's Long. */
function readVarLong(decoder: KafkajsDecoder): number | bigint {
  const start = decoder.offset;
  const bytes = decoder.buffer;
  let unsigned = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    const byte = bytes[decoder.offset++];
    if (byte === undefined) break;
    unsigned += (byte & 0x7f) * scale;
    if (byte < 0x80) return unsigned % 2 === 0 ? unsigned / 2 : -(unsigned + 1) / 2;
    scale *= 0x80;
  }
  decoder.offset = start;
  return BigInt(decoder.readVarLong().toString());
}

/** The batch's first offset and timestamp as numbers (or BigInts), parsed once per batch. */
const batchBases = new WeakMap<
  KafkajsBatchContext,
  { offset: number | bigint; timestamp: number | bigint }
>();

/** What kafkajs's record decoder module exports: one record from `decoder`. */
export function leanRecordDecoder(decoder: KafkajsDecoder, batchContext: KafkajsBatchContext = {}) {
  const { magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext;
  let bases = batchBases.get(batchContext);
  if (!bases) {
    bases = { offset: int64Of(batchContext.firstOffset), timestamp: int64Of(batchContext.firstTimestamp) };
    batchBases.set(batchContext, bases);
  }
  const attributes = decoder.readInt8();
  const timestampDelta = readVarLong(decoder);
  const timestamp =
    timestampType === LOG_APPEND_TIME && maxTimestamp ? maxTimestamp : plus(bases.timestamp, timestampDelta);
  const offset = plus(bases.offset, decoder.readVarInt());
  const key = decoder.readVarIntBytes();
  const value = decoder.readVarIntBytes();
  const headers: Record<string, Buffer | null | Array<Buffer | null>> = {};
  const count = decoder.readVarInt();
  for (let i = 0; i < count; i++) {
    const name = String(decoder.readVarIntString());
    const one = decoder.readVarIntBytes();
    const before = Object.hasOwn(headers, name) ? headers[name] : undefined;
    const now = before === undefined ? one : Array.isArray(before) ? before.concat([one]) : [before, one];
    // An own property, as kafkajs's object spread makes it, also for "__proto__".
    if (name === '__proto__')
      Object.defineProperty(headers, name, {
        value: now,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    else headers[name] = now;
  }
  return {
    magicByte,
    attributes,
    timestamp,
    offset,
    key,
    value,
    headers,
    isControlRecord: isControlBatch,
    batchContext,
  };
}

/** Puts `leanRecordDecoder` in place of kafkajs's record decoder, once per process; true when it took. */
export const useLeanKafkaRecordDecoder = (): boolean =>
  replaceKafkajsModule('src/protocol/recordBatch/record/v0/decoder.js', leanRecordDecoder);
