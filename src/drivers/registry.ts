/**
 * Backend name → driver. Each factory imports its backend's module only when asked, so a process
 * that uses Redis never loads kafkajs. The backends and what they implement are data in
 * src/config/registry.ts; each factory returns a driver declaring exactly those capabilities
 * (checked by test/conformance).
 */
import { BACKEND_NAMES } from '../config/registry.js';
import type { AnyDriver, DriverOptions } from './interfaces.js';

export type DriverFactory = (options: DriverOptions) => Promise<AnyDriver>;

export const DRIVER_FACTORIES: Readonly<Record<string, DriverFactory>> = {
  memstore: async (options) => (await import('./memstore/index.js')).createMemstoreDriver(options),
  sqlite: async (options) => (await import('./sqlite/index.js')).createSqliteDriver(options),
  redis: async (options) => (await import('./redis/index.js')).createRedisDriver(options),
  postgres: async (options) => (await import('./postgres/index.js')).createPostgresDriver(options),
  nats: async (options) => (await import('./nats/index.js')).createNatsDriver(options),
  kafka: async (options) => (await import('./kafka/index.js')).createKafkaDriver(options),
  filesystem: async (options) => (await import('./objects/index.js')).createFilesystemDriver(options),
  s3: async (options) => (await import('./objects/index.js')).createS3Driver(options),
};

/** A driver for `backend`, not yet connected: call `connect()`, and `close()` when done. */
export async function createDriver(backend: string, options: DriverOptions): Promise<AnyDriver> {
  const factory = Object.hasOwn(DRIVER_FACTORIES, backend) ? DRIVER_FACTORIES[backend] : undefined;
  if (factory === undefined) {
    throw new TypeError(
      `no driver for backend ${JSON.stringify(backend)}; known: ${BACKEND_NAMES.join(', ')}`,
    );
  }
  return factory(options);
}
