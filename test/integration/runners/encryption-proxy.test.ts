/**
 * Envelope encryption through the proxy on the real backends: a namespace whose producer and
 * consumer set `encryption` (each with its own Vault role) is served by an in-process proxy with
 * the service identity's Vault sessions, as `proxy serve` builds it. A client publishes and
 * subscribes over gRPC and gets its plaintext back; the same message read from Kafka, NATS
 * JetStream, Redis Streams and PostgreSQL with their own clients contains no plaintext; a consumer
 * pattern whose Vault role may not decrypt gets PERMISSION_DENIED on Subscribe.
 */
import { create } from '@bufbuild/protobuf';
import { jetstreamManager } from '@nats-io/jetstream';
import { status, type ServiceError } from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../../src/client/data-client.js';
import { kafkaTopic } from '../../../src/drivers/kafka/names.js';
import { queueSubject, streamName } from '../../../src/drivers/nats/names.js';
import { queueTableName } from '../../../src/drivers/postgres/queue.js';
import { streamKey } from '../../../src/drivers/redis/streams.js';
import {
  NamespaceRequestSchema,
  NamespaceResponseSchema,
  PatternAssignmentSchema,
  PatternSchema,
  PatternSettingsSchema,
  SlotAssignmentSchema,
  SlotBindingSchema,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';
import type { SubscribeResponse } from '../../../src/gen/prism/data/v1/messaging_pb.js';
import { inProcessRunners, NamespaceTable } from '../../../src/proxy/namespace-table.js';
import { ProxyServer } from '../../../src/proxy/server.js';
import { ENCRYPTION_HEADER } from '../../../src/runners/payload/encryption-stage.js';
import {
  connectNats,
  connectPostgres,
  connectRedis,
  describeWithServices,
  kafkaBrokers,
  kafkaClient,
  natsUrl,
  postgresUrl,
  redisUrl,
  uniqueName,
} from '../../support/services.js';
import { transitVault, type TransitVault } from '../../support/transit-vault.js';

const TOPIC = 'orders';
const logger = pino({ level: 'silent' });

/** One stored message as the backend's own client reads it: its body and its headers. */
interface RawRecord {
  payload: Buffer;
  headers: Record<string, string>;
}

interface Backend {
  name: string;
  endpoint: () => string;
  /** Reads the one message of the namespace's topic straight from the backend. */
  read(namespace: string): Promise<RawRecord>;
}

const BACKENDS: Backend[] = [
  {
    name: 'kafka',
    endpoint: () => `kafka://${kafkaBrokers().join(',')}`,
    async read(namespace) {
      const consumer = kafkaClient().consumer({ groupId: uniqueName('raw') });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic: kafkaTopic(namespace, TOPIC), fromBeginning: true });
        return await new Promise<RawRecord>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no Kafka record within 30 s')), 30_000);
          void consumer.run({
            eachMessage: async ({ message }) => {
              clearTimeout(timer);
              const headers: Record<string, string> = {};
              for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
              resolve({ payload: message.value ?? Buffer.alloc(0), headers });
            },
          });
        });
      } finally {
        await consumer.disconnect();
      }
    },
  },
  {
    name: 'nats',
    endpoint: () => natsUrl(),
    async read(namespace) {
      const nc = await connectNats();
      try {
        const jsm = await jetstreamManager(nc);
        const stored = await jsm.streams.getMessage(streamName(namespace), {
          last_by_subj: queueSubject(namespace, TOPIC),
        });
        const headers: Record<string, string> = {};
        for (const [k, v] of stored!.header ?? []) headers[k] = v.join(',');
        return { payload: Buffer.from(stored!.data), headers };
      } finally {
        await nc.close();
      }
    },
  },
  {
    name: 'redis',
    endpoint: () => redisUrl(),
    async read(namespace) {
      const redis = connectRedis();
      try {
        const entries = await redis.xrangeBuffer(streamKey(namespace, TOPIC), '-', '+');
        const fields = entries[0]![1];
        const record: Record<string, Buffer> = {};
        for (let i = 0; i < fields.length; i += 2) record[fields[i]!.toString()] = fields[i + 1]!;
        return {
          payload: record.payload!,
          headers: JSON.parse(record.headers!.toString()) as Record<string, string>,
        };
      } finally {
        redis.disconnect();
      }
    },
  },
  {
    name: 'postgres',
    endpoint: () => postgresUrl(),
    async read(namespace) {
      const client = await connectPostgres();
      try {
        const { rows } = await client.query<{ payload: Buffer; headers: Record<string, string> }>(
          `SELECT payload, headers FROM ${queueTableName(namespace, TOPIC)}`,
        );
        return rows[0]!;
      } finally {
        await client.end();
      }
    },
  },
];

function served(t: TransitVault, namespace: string, backend: Backend) {
  const slot = (name: string) => ({ [name]: create(SlotBindingSchema, { backend: backend.name }) });
  const encryption = (role: string) => ({ key: t.key, vaultRole: role });
  const patterns = [
    {
      name: 'events',
      type: 'producer',
      slot: 'sink',
      settings: { topic: TOPIC, encryption: encryption(t.roles.writer) },
    },
    ...[
      ['billing', t.roles.reader],
      ['snoop', t.roles.stranger],
    ].map(([name, role]) => ({
      name: name!,
      type: 'consumer',
      slot: 'source',
      settings: { topic: TOPIC, consumerGroup: name!, encryption: encryption(role!) },
    })),
  ];
  return {
    namespace: create(NamespaceRequestSchema, {
      namespace,
      team: 'test',
      auth: {
        enabled: false,
        vault: { enabled: true, address: t.vault.address, role: t.roles.stranger, authMount: t.authMount },
      },
      patterns: patterns.map((p) =>
        create(PatternSchema, {
          name: p.name,
          type: p.type,
          slots: slot(p.slot),
          settings: create(PatternSettingsSchema, p.settings),
        }),
      ),
    }),
    assignment: create(NamespaceResponseSchema, {
      namespace,
      version: 1n,
      patterns: patterns.map((p) =>
        create(PatternAssignmentSchema, {
          name: p.name,
          type: p.type,
          version: 'v1',
          slots: [
            create(SlotAssignmentSchema, {
              slot: p.slot,
              backend: backend.name,
              endpoint: backend.endpoint(),
            }),
          ],
        }),
      ),
    }),
  };
}

function firstDelivery(stream: ReturnType<DataClient['subscribe']>): Promise<SubscribeResponse> {
  return new Promise((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
  });
}

await describeWithServices(
  ['vault', 'kafka', 'nats', 'redis', 'postgres'],
  'encrypted namespaces through the proxy on real backends',
  () => {
    let t: TransitVault;
    let table: NamespaceTable;
    let proxy: ProxyServer;
    let endpoint = '';
    const namespaces = Object.fromEntries(BACKENDS.map((b) => [b.name, uniqueName(`enc-${b.name}`)]));

    beforeAll(async () => {
      t = await transitVault();
      table = new NamespaceTable(
        inProcessRunners({ dataDir: mkdtempSync(join(tmpdir(), 'prism-enc-')), vault: t.access() }),
        logger,
      );
      await table.reconcile(BACKENDS.map((b) => served(t, namespaces[b.name]!, b)));
      expect(table.names()).toEqual(Object.values(namespaces).sort());
      proxy = new ProxyServer({ listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0', table, logger });
      await proxy.start();
      endpoint = `127.0.0.1:${proxy.port}`;
    }, 60_000);
    afterAll(async () => {
      await proxy?.stop();
      await table?.stop();
      await t?.close();
    });

    for (const backend of BACKENDS) {
      it(`${backend.name}: the subscriber gets the plaintext, and the backend's own client reads no plaintext`, async () => {
        const namespace = namespaces[backend.name]!;
        const consumer = new DataClient(endpoint, { namespace, pattern: 'billing' });
        const producer = new DataClient(endpoint, { namespace, pattern: 'events' });
        const stream = consumer.subscribe({ group: 'billing' });
        try {
          const first = firstDelivery(stream);
          // A subscriber's group may join after the first publish on brokers without retention
          // from the group's start; publishing once the stream is open is enough here.
          await new Promise((r) => setTimeout(r, backend.name === 'kafka' ? 3000 : 300));
          const secret = `{"ssn":"078-05-1120","note":"plaintext-marker-${backend.name}"}`;
          const published = await producer.publish({
            payload: Buffer.from(secret),
            contentType: 'application/json',
            headers: { region: 'eu' },
          });
          const delivery = await first;
          expect(delivery.message!.messageId).toBe(published.messageId);
          expect(Buffer.from(delivery.message!.payload).toString()).toBe(secret);
          expect(delivery.message!.headers).toEqual({ region: 'eu' });
          await consumer.acknowledge({
            subscriptionId: delivery.subscriptionId,
            deliveryId: delivery.deliveryId,
          });

          const raw = await backend.read(namespace);
          const everything = Buffer.concat([raw.payload, Buffer.from(JSON.stringify(raw.headers))]);
          expect(everything.includes(Buffer.from('078-05-1120'))).toBe(false);
          expect(everything.includes(Buffer.from('plaintext-marker'))).toBe(false);
          expect(raw.payload.length).toBe(Buffer.byteLength(secret) + 16);
          expect(raw.headers[ENCRYPTION_HEADER.algorithm]).toBe('AES-256-GCM');
          expect(raw.headers[ENCRYPTION_HEADER.key]).toBe(t.key);
          expect(raw.headers[ENCRYPTION_HEADER.wrappedKey]).toMatch(/^vault:v\d+:/);
          expect(raw.headers['prism-message-id']).toBe(published.messageId);
        } finally {
          stream.cancel();
          consumer.close();
          producer.close();
        }
      }, 60_000);
    }

    it('a consumer pattern whose Vault role may not decrypt gets PERMISSION_DENIED on Subscribe', async () => {
      const namespace = namespaces.redis!;
      const snoop = new DataClient(endpoint, { namespace, pattern: 'snoop' });
      try {
        const err = (await firstDelivery(snoop.subscribe({ group: 'snoop' })).then(
          () => undefined,
          (e: unknown) => e,
        )) as ServiceError;
        expect(err.code).toBe(status.PERMISSION_DENIED);
        expect(err.details).toBe(
          `${namespace}/snoop: the Vault role ${t.roles.stranger} may not decrypt with the transit key ${t.key}, so it cannot read this encrypted topic`,
        );
      } finally {
        snoop.close();
      }
    });
  },
);
