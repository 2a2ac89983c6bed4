/**
 * listenUntilClose (src/transport/http2-exchange.ts): an exchange hears its stream's data, end and
 * drain until the stream closes, and leaves no listener of its own on the closed stream (Node keeps
 * a closed stream reachable until a full GC; a listener left on it kept the call alive with it).
 */
import { EventEmitter } from 'node:events';
import type { ServerHttp2Stream } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { listenUntilClose } from '../../../src/transport/http2-exchange.js';

const EVENTS = ['data', 'end', 'close', 'drain'] as const;

function fakeStream(): EventEmitter & ServerHttp2Stream {
  const stream = new EventEmitter();
  stream.on('close', () => undefined); // someone else's listener, which stays
  return stream as EventEmitter & ServerHttp2Stream;
}

describe('listenUntilClose', () => {
  it('delivers the events, calls close once, then takes its own listeners off', () => {
    const stream = fakeStream();
    const seen: string[] = [];
    listenUntilClose(stream, {
      data: (chunk) => seen.push(`data ${chunk.toString()}`),
      end: () => seen.push('end'),
      drain: () => seen.push('drain'),
      close: () => seen.push('close'),
    });
    stream.emit('data', Buffer.from('a'));
    stream.emit('drain');
    stream.emit('end');
    stream.emit('close');
    stream.emit('close');
    stream.emit('data', Buffer.from('late'));
    expect(seen).toEqual(['data a', 'drain', 'end', 'close']);
    expect(EVENTS.map((e) => stream.listenerCount(e))).toEqual([0, 0, 1, 0]);
  });

  it('adds no drain listener when the exchange has none', () => {
    const stream = fakeStream();
    listenUntilClose(stream, { data: () => undefined, end: () => undefined, close: () => undefined });
    expect(stream.listenerCount('drain')).toBe(0);
    expect(stream.listenerCount('close')).toBe(2);
    stream.emit('close');
    expect(EVENTS.map((e) => stream.listenerCount(e))).toEqual([0, 0, 1, 0]);
  });
});
