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
import { ConfigResourceTypes } from 'kafkajs';
import {
  connectNats,
  kafkaBrokers,
  kafkaClient,
  natsUrl,
  postgresUrl,
  redisUrl,
  s3Config,
  type ServiceName,
} from '../support/services.js';
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
  /** The slot endpoint a runner uses to reach the same backend (test/conformance/runners.test.ts). */
  endpoint(): string;
  /**
   * The backend's largest message in bytes, read from the server itself (not from the driver);
   * absent when the backend has no limit a 2 MiB payload reaches.
   */
  messageLimitBytes?(): Promise<number>;
  /** A fresh data directory for file-backed drivers, handed to runners as `dataDir`. */
  dataDir?(): string;
  /** Removes what `create` left behind (files), after the driver is closed. */
  dispose?(): Promise<void>;
}

export type DriverExtras = Pick<DriverOptions, 'retentionMs'>;

const sqliteDirs: string[] = [];

function sqliteDir(): string {
  const dataDir = mkdtempSync(join(tmpdir(), 'prism-conformance-sqlite-'));
  sqliteDirs.push(dataDir);
  return dataDir;
}

export const DRIVERS: readonly DriverUnderTest[] = [
  {
    name: 'memstore',
    backend: 'memstore',
    create: (namespace, extra) => createDriver('memstore', { endpoint: 'memory://', namespace, ...extra }),
    endpoint: () => 'memory://',
  },
  {
    name: 'sqlite',
    backend: 'sqlite',
    create: (namespace, extra) =>
      createDriver('sqlite', { endpoint: 'file:keyvalue.sqlite', namespace, dataDir: sqliteDir(), ...extra }),
    endpoint: () => 'file:keyvalue.sqlite',
    dataDir: () => sqliteDir(),
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
    endpoint: () => redisUrl(),
  },
  {
    // Redis pub/sub alone: at-most-once, so it must not declare `queue` (that is Redis Streams).
    name: 'redis pubsub',
    backend: 'redis',
    declares: ['pubsub'],
    service: 'redis',
    create: async (namespace) => createRedisPubSub({ endpoint: redisUrl(), namespace }),
    endpoint: () => redisUrl(),
  },
  {
    name: 'postgres',
    backend: 'postgres',
    service: 'postgres',
    create: (namespace, extra) => createDriver('postgres', { endpoint: postgresUrl(), namespace, ...extra }),
    endpoint: () => postgresUrl(),
  },
  {
    name: 'nats',
    backend: 'nats',
    service: 'nats',
    create: (namespace, extra) => createDriver('nats', { endpoint: natsUrl(), namespace, ...extra }),
    endpoint: () => natsUrl(),
    messageLimitBytes: async () => {
      const nc = await connectNats();
      try {
        return nc.info!.max_payload;
      } finally {
        await nc.close();
      }
    },
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
    endpoint: () => `kafka://${kafkaBrokers().join(',')}`,
    messageLimitBytes: async () => {
      const admin = kafkaClient().admin();
      await admin.connect();
      try {
        const { brokers } = await admin.describeCluster();
        const { resources } = await admin.describeConfigs({
          includeSynonyms: false,
          resources: [
            {
              type: ConfigResourceTypes.BROKER,
              name: String(brokers[0]!.nodeId),
              configNames: ['message.max.bytes'],
            },
          ],
        });
        return Number(
          resources[0]!.configEntries.find((e) => e.configName === 'message.max.bytes')!.configValue,
        );
      } finally {
        await admin.disconnect();
      }
    },
  },
  {
    name: 'filesystem',
    backend: 'filesystem',
    create: (namespace, extra) =>
      createDriver('filesystem', {
        endpoint: 'file:data/objects',
        namespace,
        dataDir: sqliteDir(),
        ...extra,
      }),
    endpoint: () => 'file:data/objects',
    dataDir: () => sqliteDir(),
    dispose: async () => {
      for (const dir of sqliteDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  },
  {
    name: 's3 (SeaweedFS)',
    backend: 's3',
    service: 's3',
    create: (namespace, extra) => createDriver('s3', { ...s3DriverOptions(), namespace, ...extra }),
    endpoint: () => s3DriverOptions().endpoint,
  },
];

/** The s3 driver's endpoint and credentials for the test server's conformance bucket. */
export function s3DriverOptions(
  bucket = 'prism-conformance',
): Pick<DriverOptions, 'endpoint' | 'credentials'> {
  const config = s3Config();
  return {
    endpoint: `${config.endpoint}/${bucket}?region=${config.region}`,
    credentials: { username: config.accessKeyId, password: config.secretAccessKey },
  };
}

/** The capabilities the entry's driver must declare: its own list, else its backend's. */
export function declaredCapabilities(entry: DriverUnderTest): readonly Capability[] {
  return entry.declares ?? BACKENDS[entry.backend]?.implements ?? [];
}
