/** sqlite: keyvalue, ttl and scan in one file under `dataDir` (in memory without one). */
import type { AnyDriver, DriverOptions } from '../interfaces.js';
import { createSqliteKeyValue } from './keyvalue.js';

export async function createSqliteDriver(options: DriverOptions): Promise<AnyDriver> {
  return createSqliteKeyValue({ namespace: options.namespace, dataDir: options.dataDir });
}
