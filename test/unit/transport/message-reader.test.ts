/**
 * MessageReader (src/transport/call-frames.ts) splits a gRPC stream's bytes into its messages,
 * however the stream is cut into chunks: a message within one chunk, one across many, an empty
 * one, one above the limit skipped with only its first bytes and size reported.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MessageReader } from '../../../src/transport/call-frames.js';

const KiB = 1024;

/** A gRPC message frame: the compressed flag, the length, the bytes. */
function frame(message: Buffer, compressed = false): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** The stream cut into chunks of the given sizes, cycled. */
function cut(stream: Buffer, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < stream.length; i++) {
    const n = sizes[i % sizes.length]!;
    chunks.push(stream.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

function read(chunks: Buffer[], max = 1 << 30) {
  const messages: Array<{ message: Buffer; compressed: boolean }> = [];
  const oversized: Array<{ head: string; size: number }> = [];
  const reader = new MessageReader(
    max,
    (message, compressed) => messages.push({ message: Buffer.from(message), compressed }),
    (head, size) => oversized.push({ head: head.toString('hex'), size }),
  );
  for (const chunk of chunks) reader.push(chunk);
  return { messages, oversized };
}

describe('MessageReader', () => {
  const messages = [
    randomBytes(0),
    randomBytes(3),
    randomBytes(64 * KiB - 1),
    randomBytes(64 * KiB),
    randomBytes(1_000_003),
    randomBytes(17),
    randomBytes(3 * 64 * KiB + 5),
  ];
  const stream = Buffer.concat(messages.map((m, i) => frame(m, i === 3)));

  for (const sizes of [[stream.length], [1], [2, 3, 7], [16_384], [16_384, 5, 70_000], [4099, 1]]) {
    it(`returns every message whole and in order, with its compressed flag, from chunks of ${sizes.join(', ')} bytes`, () => {
      const read_ = read(cut(stream, sizes));
      expect(read_.messages.map((m) => m.message.toString('hex'))).toEqual(
        messages.map((m) => m.toString('hex')),
      );
      expect(read_.messages.map((m) => m.compressed)).toEqual(messages.map((_, i) => i === 3));
      expect(read_.oversized).toEqual([]);
    });
  }

  it('reports a message above the limit with its first bytes and size, skips it, and reads on', () => {
    const big = randomBytes(200_000);
    const after = randomBytes(10);
    const chunks = cut(Buffer.concat([frame(big), frame(after)]), [16_384, 3]);
    const read_ = read(chunks, 100_000);
    expect(read_.oversized).toEqual([{ head: big.subarray(0, 4).toString('hex'), size: 200_000 }]);
    expect(read_.messages.map((m) => m.message.toString('hex'))).toEqual([after.toString('hex')]);
  });
});
