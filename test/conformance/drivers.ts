/**
 * The drivers under conformance test, as the proxy builds them (test/conformance/*.test.ts): one
 * line per driver. `create` builds a fresh, unconnected driver for a namespace through the driver
 * registry; each suite tests what the driver declares and asserts the rest absent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKENDS, type Capability } from '../../src/config/registry.js';
import type { AnyDriver, DriverOptions } from '../../src/drivers/interfaces.js';
import { createRedisPubSub } from '../../src/drivers/redis/pubsub.js';
import { createDriver } from '../../src/drivers/registry.js';
import { kafkaBrokers, natsUrl, postgresUrl, redisUrl, type ServiceName } from '../support/services.js';
import type { KafkaDriverOptions } from '../../src/drivers/kafka/index.js';

export interface DriverUnderTest {
  name: string;
  /** Registry backend name (src/config/registry.ts). */
  backend: string;
  /**
   * What the driver declares, when it is one part of a backend rather than the whole (the Redis
   * pub/sub driver alone); absent: what the registry says the backend implements.
   */
  declares?: readonly Capability[];
  /** The real service it needs; absent for in-process drivers. */
  service?: ServiceName;
  /** `extra` carries namespace-wide options such as `retentionMs`. */
  create(namespace: string, extra?: DriverExtras): Promise<AnyDriver>;
  /** The queue drops messages older than `retentionMs` (needs.retention); others keep them. */
  trimsByRetention?: boolean;
  /** Removes what `create` left behind (files), after the driver is closed. */
  dispose?(): Promise<void>;
}

export type DriverExtras = Pick<DriverOptions, 'retentionMs'>;

const sqliteDirs: string[] = [];

export const DRIVERS: readonly DriverUnderTest[] = [
  {
    name: 'memstore',
    backend: 'memstore',
    create: (namespace, extra) => createDriver('memstore', { endpoint: 'memory://', namespace, ...extra }),
  },
  {
    name: 'sqlite',
    backend: 'sqlite',
    create: (namespace) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'prism-conformance-sqlite-'));
      sqliteDirs.push(dataDir);
      return createDriver('sqlite', { endpoint: 'file:keyvalue.sqlite', namespace, dataDir });
    },
    dispose: async () => {
      for (const dir of sqliteDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  },
  {
    name: 'redis',
    backend: 'redis',
    service: 'redis',
    trimsByRetention: true,
    create: (namespace, extra) => createDriver('redis', { endpoint: redisUrl(), namespace, ...extra }),
  },
  {
    // Redis pub/sub alone: at-most-once, so it must not declare `queue` (that is Redis Streams).
    name: 'redis pubsub',
    backend: 'redis',
    declares: ['pubsub'],
    service: 'redis',
    create: async (namespace) => createRedisPubSub({ endpoint: redisUrl(), namespace }),
  },
  {
    name: 'postgres',
    backend: 'postgres',
    service: 'postgres',
    create: (namespace, extra) => createDriver('postgres', { endpoint: postgresUrl(), namespace, ...extra }),
  },
  {
    name: 'nats',
    backend: 'nats',
    service: 'nats',
    create: (namespace, extra) => createDriver('nats', { endpoint: natsUrl(), namespace, ...extra }),
  },
  {
    name: 'kafka',
    backend: 'kafka',
    service: 'kafka',
    create: (namespace, extra) => {
      const options: KafkaDriverOptions = {
        endpoint: `kafka://${kafkaBrokers().join(',')}`,
        namespace,
        ...extra,
        // Small group timings keep consumer-group joins and rebalances quick in tests.
        kafka: { sessionTimeoutMs: 6000, rebalanceTimeoutMs: 3000, heartbeatIntervalMs: 500 },
      };
      return createDriver('kafka', options);
    },
  },
];

/** The capabilities the entry's driver must declare: its own list, else its backend's. */
export function declaredCapabilities(entry: DriverUnderTest): readonly Capability[] {
  return entry.declares ?? BACKENDS[entry.backend]?.implements ?? [];
}
