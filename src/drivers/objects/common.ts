/** What every `objects` driver shares: key rules, checksums, ranges, expiry and reading. */
import { createHash } from 'node:crypto';
import { PrismError } from '../../errors.js';
import type { ObjectRange, ObjectReader, PutObjectOptions } from '../interfaces.js';

const KEY = /^[A-Za-z0-9._/-]{1,512}$/;

/** Checks an object key (see ObjectStore); E_INVALID_ARGUMENT names what is wrong. */
export function checkObjectKey(key: string): string {
  if (typeof key !== 'string' || !KEY.test(key)) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `object key ${JSON.stringify(key)} must be 1 to 512 characters of A-Z a-z 0-9 . _ - /`,
    );
  }
  if (key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `object key ${JSON.stringify(key)} has an empty, '.' or '..' segment`,
    );
  }
  return key;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The SHA-256 of `body`, checked against the caller's expectation when it gave one; the caller's
 * own, unhashed, when it computed it from this body (`sha256Computed`).
 */
export function checksumFor(key: string, body: Uint8Array, options: PutObjectOptions | undefined): string {
  const computed = computedSha256(options);
  if (computed !== undefined) return computed;
  return checkChecksum(key, sha256Hex(body), options);
}

/** The caller's SHA-256 of the body when it computed it itself (PutObjectOptions.sha256Computed). */
function computedSha256(options: PutObjectOptions | undefined): string | undefined {
  return options?.sha256Computed === true && options.sha256 !== undefined
    ? options.sha256.toLowerCase()
    : undefined;
}

/** `actual`, when it is what the caller expected (or it expected nothing); else E_INVALID_ARGUMENT. */
export function checkChecksum(key: string, actual: string, options: PutObjectOptions | undefined): string {
  if (options?.sha256 !== undefined && options.sha256.toLowerCase() !== actual) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `object ${key}: the body's SHA-256 is ${actual}, not the expected ${options.sha256}`,
      { hint: 'the bytes changed on the way; nothing was stored' },
    );
  }
  return actual;
}

/**
 * Passes `body`'s chunks on while hashing and counting them; `result()` after the last chunk
 * gives the size and SHA-256. The last chunk is passed on only once the body has ended and its
 * size and SHA-256 are what `options.size` and `options.sha256` announced: a mismatch throws
 * from the iteration before the body's last byte, so a store writing the body as it arrives
 * (one request of the announced length) never receives a complete object to make visible.
 */
export function hashingTap(
  key: string,
  body: AsyncIterable<Uint8Array>,
  options: PutObjectOptions | undefined,
): { chunks: AsyncGenerator<Uint8Array>; result(): { size: number; sha256: string } } {
  // A hash the caller computed from the body it holds is not computed again (only the size is checked).
  const computed = computedSha256(options);
  const hash = computed === undefined ? createHash('sha256') : undefined;
  const expected = options?.size;
  let size = 0;
  let done: { size: number; sha256: string } | undefined;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let held: Uint8Array | undefined;
    for await (const chunk of body) {
      hash?.update(chunk);
      size += chunk.byteLength;
      if (expected !== undefined && size > expected)
        throw sizeMismatch(key, expected, `more than ${expected}`);
      if (held !== undefined) yield held;
      held = chunk;
    }
    if (expected !== undefined && size !== expected) throw sizeMismatch(key, expected, String(size));
    done = {
      size,
      sha256: hash === undefined ? (computed as string) : checkChecksum(key, hash.digest('hex'), options),
    };
    if (held !== undefined) yield held;
  }
  return {
    chunks: chunks(),
    result: () => {
      if (done === undefined) throw new Error(`object ${key}: the body was not read to its end`);
      return done;
    },
  };
}

export function sizeMismatch(key: string, expected: number, actual: string): PrismError {
  return new PrismError(
    'E_INVALID_ARGUMENT',
    `object ${key}: the body is ${actual} bytes, not the announced ${expected}`,
    { hint: 'nothing was stored' },
  );
}

/** Epoch ms of expiry for a put at `now`, or undefined when it never expires. */
export function expiryOf(options: PutObjectOptions | undefined, now: number): number | undefined {
  const ttl = options?.ttlMs ?? 0;
  if (!Number.isFinite(ttl) || ttl < 0) {
    throw new PrismError('E_INVALID_ARGUMENT', `object ttl must be 0 or more milliseconds, not ${ttl}`);
  }
  return ttl > 0 ? now + ttl : undefined;
}

export function expired(expiresAtMs: number | undefined, now: number): boolean {
  return expiresAtMs !== undefined && expiresAtMs <= now;
}

/** Checks a range; returns [start, endExclusive] clamped to an object of `size` bytes. */
export function clampRange(range: ObjectRange | undefined, size: number): [number, number] {
  if (range === undefined) return [0, size];
  const { offset, length } = range;
  if (
    !Number.isInteger(offset) ||
    offset < 0 ||
    (length !== undefined && (!Number.isInteger(length) || length < 0))
  ) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `object range needs an integer offset >= 0 and length >= 0 (got ${offset}, ${length})`,
    );
  }
  const start = Math.min(offset, size);
  const end = length === undefined ? size : Math.min(size, offset + length);
  return [start, Math.max(start, end)];
}

/**
 * A reader's bytes in one buffer of its announced size; a body that disagrees with that size
 * (more bytes, or fewer) is `mismatch(received)`, where received is at least what arrived.
 */
export async function readAll(
  reader: ObjectReader,
  mismatch: (received: number) => Error,
): Promise<Uint8Array> {
  const out = Buffer.allocUnsafe(reader.size);
  await fillFrom(reader, out, mismatch);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Places a reader's bytes in `target`, calling `onBytes` with each newly filled view in order:
 * through the driver's `readInto` when it has one and `target` is the reader's size (no copy),
 * else chunk by chunk. A body longer or shorter than `target` is `mismatch(received)`; reading the
 * chunks until it shows releases the read.
 */
export async function fillFrom(
  reader: ObjectReader,
  target: Uint8Array,
  mismatch: (received: number) => Error,
  onBytes?: (view: Uint8Array) => void,
): Promise<void> {
  if (reader.readInto !== undefined && target.byteLength === reader.size)
    return reader.readInto(target, onBytes);
  let at = 0;
  for await (const chunk of reader.chunks) {
    if (at + chunk.byteLength > target.byteLength) throw mismatch(at + chunk.byteLength);
    target.set(chunk, at);
    onBytes?.(target.subarray(at, at + chunk.byteLength));
    at += chunk.byteLength;
  }
  if (at !== target.byteLength) throw mismatch(at);
}

/** Bytes as a stream of one chunk (a view, not a copy). */
export async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}
