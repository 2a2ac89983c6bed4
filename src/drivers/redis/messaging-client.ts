import type { RedisOptions } from 'ioredis';
import type { DriverOptions } from '../interfaces.js';

/**
 * ioredis options of the messaging connections (pub/sub and Streams): fail at once while Redis is
 * down (no offline queue, no retry per request) and reconnect in the background, up to once a
 * second. The caller's `client` options (tests, benchmarks) win.
 */
export function messagingClientOptions(options: DriverOptions & { client?: RedisOptions }): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: 2_000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(50 * times, 1_000),
    ...(options.credentials
      ? { username: options.credentials.username, password: options.credentials.password }
      : {}),
    ...options.client,
  };
}
