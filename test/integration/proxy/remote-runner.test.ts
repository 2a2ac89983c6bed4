/**
 * The proxy's remote runner against a real runner server on a Unix socket, as the launcher wires
 * them for `isolation: namespace`: one process serving a namespace's producer and consumer, the
 * caller the proxy authenticated reaching the envelope, the runner's own statuses coming back,
 * and the caller header refused where it cannot be trusted (TCP).
 */
import {
  Metadata,
  credentials,
  makeGenericClientConstructor,
  status,
  type ServiceError,
} from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consumer, Producer, PublishRequestSchema } from '../../../src/gen/prism/data/v1/messaging_pb.js';
import { KeyValue } from '../../../src/gen/prism/data/v1/keyvalue_pb.js';
import { service as healthService } from 'grpc-health-check';
import { RemoteRunner, type RunnerClients } from '../../../src/proxy/remote-runner.js';
import { RunnerServer } from '../../../src/runners/runner-server.js';
import { GrpcHttp2Channel } from '../../../src/client/grpc-http2.js';
import { setCaller } from '../../../src/runners/caller-header.js';
import { grpcServiceDefinition } from '../../../src/transport/service-definition.js';
import { NAMESPACE_HEADER } from '../../../src/transport/metadata.js';
import type { ConsumerDelivery } from '../../../src/runners/types.js';
import { buildRunner, uniqueNamespace } from '../../unit/runners/helpers.js';

const ProducerClient = makeGenericClientConstructor(grpcServiceDefinition(Producer), 'Producer');
const ConsumerClient = makeGenericClientConstructor(grpcServiceDefinition(Consumer), 'Consumer');
const KeyValueClient = makeGenericClientConstructor(grpcServiceDefinition(KeyValue), 'KeyValue');
const HealthClient = makeGenericClientConstructor(healthService as never, 'Health');
const logger = pino({ level: 'silent' });
const namespace = uniqueNamespace('remote');
const socket = `unix:${join(mkdtempSync(join(tmpdir(), 'prism-rr-')), 'r.sock')}`;
const caller = { subject: 'user:ada', tenant: 'acme', roles: ['billing', 'admin'] };

describe('a remote runner over a Unix socket', () => {
  let server: RunnerServer;
  let clients: RunnerClients;
  const remote = (pattern: string, type: string) =>
    new RemoteRunner(
      namespace,
      pattern,
      type,
      { clients: () => clients, serving: async () => {} },
      {
        acquire: async () => {},
        release: async () => {},
      },
    );

  beforeAll(async () => {
    const producer = buildRunner({
      type: 'producer',
      name: 'events',
      namespace,
      slots: { sink: 'memstore' },
      settings: { topic: 'orders' },
    });
    const consumer = buildRunner({
      type: 'consumer',
      name: 'billing',
      namespace,
      slots: { source: 'memstore' },
      settings: { topic: 'orders', consumerGroup: 'billing' },
    });
    const kv = buildRunner({ type: 'keyvalue', name: 'cache', namespace, slots: { store: 'memstore' } });
    server = new RunnerServer([producer, consumer, kv], { listen: socket, logger });
    await server.start();
    const insecure = credentials.createInsecure();
    clients = {
      unary: GrpcHttp2Channel.to({ socketPath: socket.slice('unix:'.length) }),
      keyValue: new KeyValueClient(socket, insecure) as never,
      producer: new ProducerClient(socket, insecure) as never,
      consumer: new ConsumerClient(socket, insecure) as never,
      health: new HealthClient(socket, insecure) as never,
    };
  });

  afterAll(async () => {
    Object.values(clients ?? {}).forEach((c) => (c as { close(): void }).close());
    await server?.stop();
  });

  it('delivers what one pattern of the process publishes to another, with the proxy’s caller in the envelope', async () => {
    const received: ConsumerDelivery[] = [];
    const subscription = await remote('billing', 'consumer').subscribe(
      { group: 'billing', prefetch: 4 },
      (d) => {
        received.push(d);
      },
    );
    const result = await remote('events', 'producer').publish(
      { payload: Buffer.from('paid'), correlationId: 'o-1' },
      caller,
    );
    const deadline = Date.now() + 5000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await received[0]?.ack();
    await subscription.close();
    expect(
      received.map((d) => [
        d.envelope.messageId,
        Buffer.from(d.envelope.payload).toString(),
        d.envelope.correlationId,
      ]),
    ).toEqual([[result.messageId, 'paid', 'o-1']]);
    const session = received[0]!.envelope.session!;
    expect([session.subject, session.tenant, [...session.roles]]).toEqual([
      'user:ada',
      'acme',
      ['billing', 'admin'],
    ]);
  });

  it('keeps the runner’s own error codes', async () => {
    const kv = remote('cache', 'keyvalue');
    await kv.set('k', Buffer.from('v'));
    expect(Buffer.from((await kv.get('k'))!).toString()).toBe('v');
    const err = await kv.set('', Buffer.from('v')).catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe('E_INVALID_ARGUMENT');
  });

  it('reports each pattern’s backend health', async () => {
    await new Promise((r) => setTimeout(r, 100));
    await expect(remote('cache', 'keyvalue').health()).resolves.toBeUndefined();
  });

  it('says UNAVAILABLE, not a hang, when the process is gone', async () => {
    const gone = new RemoteRunner(
      namespace,
      'cache',
      'keyvalue',
      {
        clients: () => {
          throw Object.assign(new Error('down'), { code: 'E_UNAVAILABLE' });
        },
        serving: () => Promise.reject(new Error('stopped')),
      },
      { acquire: async () => {}, release: async () => {} },
    );
    await expect(gone.get('k')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });
});

describe('the caller header on TCP', () => {
  let server: RunnerServer;
  beforeAll(async () => {
    const producer = buildRunner({
      type: 'producer',
      name: 'events',
      slots: { sink: 'memstore' },
      settings: { topic: 'orders' },
    });
    server = new RunnerServer(producer, { listen: '127.0.0.1:0', logger });
    await server.start();
  });
  afterAll(() => server?.stop());

  it('is refused with PERMISSION_DENIED: only the launching proxy’s Unix socket is trusted', async () => {
    const client = new ProducerClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
    const metadata = new Metadata();
    metadata.set(NAMESPACE_HEADER, 'any');
    setCaller(metadata, caller);
    const err = await new Promise<ServiceError>((resolve) =>
      (client as never as Record<string, (...a: unknown[]) => void>).publish!(
        create(PublishRequestSchema, { payload: Buffer.from('x') }),
        metadata,
        (e: ServiceError) => resolve(e),
      ),
    );
    client.close();
    expect([err.code, err.details]).toEqual([
      status.PERMISSION_DENIED,
      'x-prism-caller-bin is accepted only from the proxy that launched this runner (Unix socket) or from a peer with a trusted client certificate (TCP with --tls-client-ca)',
    ]);
  });
});
