/**
 * postgres: keyvalue, ttl and scan (keyvalue.ts), queue (queue.ts) and mailbox (mailbox.ts), each
 * with its own pool.
 */
import { combine } from '../combine.js';
import type { AnyDriver, DriverOptions } from '../interfaces.js';
import { createPostgresKeyValue } from './keyvalue.js';
import { createPostgresMailbox } from './mailbox.js';
import { createPostgresQueue } from './queue.js';

export async function createPostgresDriver(options: DriverOptions): Promise<AnyDriver> {
  return combine(
    createPostgresKeyValue(options),
    createPostgresQueue(options),
    createPostgresMailbox(options),
  );
}
