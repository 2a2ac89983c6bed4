/**
 * redis: keyvalue, ttl and scan (keyvalue.ts), pubsub on Redis pub/sub (pubsub.ts) and queue on
 * Redis Streams (streams.ts), each on its own connections. A runner uses the queue for producer
 * and consumer slots unless the namespace declares `needs.delivery: at-most-once`.
 */
import { combine } from '../combine.js';
import type { AnyDriver, DriverOptions } from '../interfaces.js';
import { createRedisKeyValue } from './keyvalue.js';
import { releaseFinishedIoredisPipelines } from './pipeline-release-fix.js';
import { createRedisPubSub } from './pubsub.js';
import { createRedisStreams } from './streams.js';

export async function createRedisDriver(options: DriverOptions): Promise<AnyDriver> {
  releaseFinishedIoredisPipelines();
  return combine(createRedisKeyValue(options), createRedisPubSub(options), createRedisStreams(options));
}
