/**
 * Protobuf base-128 varints for the hand-written encoders (fast-encoders.ts,
 * large-payload-encoder.ts). Lengths and tags only: non-negative numbers below 2^53.
 */

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` at `offset`; returns the offset after it. */
export function writeVarint(buf: Buffer, offset: number, n: number): number {
  while (n >= 0x80) {
    buf[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[offset++] = n;
  return offset;
}

/** Reads a varint at `offset`; RangeError when the bytes end inside it. */
export function readVarint(bytes: Uint8Array, offset: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[offset++];
    if (byte === undefined) throw new RangeError('truncated varint');
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, offset];
    scale *= 128;
  }
}
