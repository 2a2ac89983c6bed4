/** postgres: keyvalue, ttl and scan (keyvalue.ts) with queue (queue.ts), each with its own pool. */
import { combine } from '../combine.js';
import type { AnyDriver, DriverOptions } from '../interfaces.js';
import { createPostgresKeyValue } from './keyvalue.js';
import { createPostgresQueue } from './queue.js';

export async function createPostgresDriver(options: DriverOptions): Promise<AnyDriver> {
  return combine(createPostgresKeyValue(options), createPostgresQueue(options));
}
