/**
 * sqlite: keyvalue, ttl and scan (keyvalue.ts) and mailbox (mailbox.ts), each in its own file under
 * `dataDir` (in memory without one).
 */
import { combine } from '../combine.js';
import type { AnyDriver, DriverOptions } from '../interfaces.js';
import { createSqliteKeyValue } from './keyvalue.js';
import { createSqliteMailbox } from './mailbox.js';

export async function createSqliteDriver(options: DriverOptions): Promise<AnyDriver> {
  const where = { namespace: options.namespace, dataDir: options.dataDir };
  return combine(createSqliteKeyValue(where), createSqliteMailbox(where));
}
