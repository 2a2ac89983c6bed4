/**
 * A pull-style reader over a Subscribe stream (or any stream of 'data' and 'error' events):
 * `next()` resolves with the next item, buffered or still to come, and rejects once the stream
 * failed. Only type imports, so plain Node (type stripping) loads it too, as the benchmarks do.
 */
import type { EventEmitter } from 'node:events';

export interface StreamReader<T> {
  next(): Promise<T>;
}

export function reader<T>(stream: EventEmitter): StreamReader<T> {
  const buffered: T[] = [];
  const waiting: Array<{ resolve: (item: T) => void; reject: (err: Error) => void }> = [];
  let failure: Error | undefined;
  stream.on('data', (item: T) => {
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(item);
    else buffered.push(item);
  });
  stream.on('error', (err: Error) => {
    failure = err;
    for (const waiter of waiting.splice(0)) waiter.reject(err);
  });
  return {
    next: () => {
      if (buffered.length > 0) return Promise.resolve(buffered.shift()!);
      if (failure) return Promise.reject(failure);
      return new Promise<T>((resolve, reject) => waiting.push({ resolve, reject }));
    },
  };
}
