/**
 * UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then random bits, so ids sort by creation
 * time. Within one millisecond the 12-bit `rand_a` field is a counter (RFC 9562 §6.2, method 1),
 * so ids made by this process are strictly increasing even when the clock stands still or steps
 * back. Kept here rather than importing `uuid`, which is only a transitive dependency.
 */
import { randomBytes } from 'node:crypto';

let lastMs = -1;
let counter = 0;

// Random bytes drawn 4 KiB at a time: one crypto call per 256 ids instead of one or two per id
// (a publish stream makes thousands a second).
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let offset = POOL_BYTES;

function randomInto(target: Buffer, length: number): void {
  if (offset + length > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  pool.copy(target, 0, offset, offset + length);
  offset += length;
}

/** A new UUIDv7 in the canonical lower-case 8-4-4-4-12 form. */
export function uuidv7(now: number = Date.now()): string {
  let ms = Math.max(now, lastMs);
  if (ms === lastMs) {
    counter++;
    if (counter > 0xfff) {
      // 4096 ids in one millisecond: borrow the next millisecond rather than repeat.
      ms++;
      counter = 0;
    }
  } else {
    // A random start below half the range leaves room to count within the millisecond.
    const start = Buffer.allocUnsafe(2);
    randomInto(start, 2);
    counter = start.readUInt16BE(0) & 0x7ff;
  }
  lastMs = ms;

  const bytes = Buffer.allocUnsafe(16);
  randomInto(bytes, 16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function isUuidV7(text: string): boolean {
  return UUID_V7.test(text);
}

/** The creation time in milliseconds carried by a UUIDv7. */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
