/**
 * memstore: keyvalue, ttl and scan (keyvalue.ts) with pubsub and queue (messaging.ts) and objects
 * (../objects/memstore.ts), in this process.
 */
import { combine } from '../combine.js';
import type { AnyDriver, DriverOptions } from '../interfaces.js';
import { createMemstoreKeyValue } from './keyvalue.js';
import { createMemstoreMessaging } from './messaging.js';
import { createMemstoreObjects } from '../objects/memstore.js';

export async function createMemstoreDriver(options: DriverOptions): Promise<AnyDriver> {
  return combine(
    createMemstoreKeyValue(options),
    createMemstoreMessaging(options),
    createMemstoreObjects(options),
  );
}
