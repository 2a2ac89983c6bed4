/** redis: keyvalue, ttl and scan (keyvalue.ts) with pubsub (pubsub.ts), each on its own connection. */
import { combine } from '../combine.js';
import type { AnyDriver, DriverOptions } from '../interfaces.js';
import { createRedisKeyValue } from './keyvalue.js';
import { createRedisPubSub } from './pubsub.js';

export async function createRedisDriver(options: DriverOptions): Promise<AnyDriver> {
  return combine(createRedisKeyValue(options), createRedisPubSub(options));
}
