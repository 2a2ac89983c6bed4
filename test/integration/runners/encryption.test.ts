/**
 * Envelope encryption (setting `encryption`, docs/messaging.md "Encryption") between producer and
 * consumer runners, with data keys from the real Vault's transit engine (OpenBao): what travels is
 * ciphertext with the wrapped key, the consumer gets the plaintext, Vault's policy decides who may
 * seal and open, a key rotated in Vault changes nothing for Prism, and with Vault gone nothing is
 * sent in clear.
 */
import { create } from '@bufbuild/protobuf';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { VaultAccess } from '../../../src/auth/vault-transit.js';
import type { Delivery } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import {
  NamespaceRequestSchema,
  PatternAssignmentSchema,
  PatternSchema,
  PatternSettingsSchema,
  SlotAssignmentSchema,
  SlotBindingSchema,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ConsumerRunner } from '../../../src/runners/consumer/runner.js';
import { createRunner } from '../../../src/runners/create-runner.js';
import { ENCRYPTION_HEADER } from '../../../src/runners/payload/encryption-stage.js';
import type { ProducerRunner } from '../../../src/runners/producer/runner.js';
import type { ConsumerDelivery } from '../../../src/runners/types.js';
import { describeWithServices, natsUrl } from '../../support/services.js';
import { transitVault, type TransitVault } from '../../support/transit-vault.js';
import { ALICE, bytes, eventually, memoryLogger, text, uniqueNamespace } from '../../unit/runners/helpers.js';

const TOPIC = 'orders.events';
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

type Settings = MessageInitShape<typeof PatternSettingsSchema>;

/** A producer or consumer runner of a namespace with auth.vault on, as the proxy builds it. */
function runner<R>(
  t: TransitVault,
  access: VaultAccess,
  spec: {
    type: 'producer' | 'consumer';
    namespace: string;
    role: string;
    slots: Record<string, { backend: string; endpoint: string }>;
    settings: Settings;
  },
): R {
  const name = spec.type === 'producer' ? 'events' : 'billing';
  const ns = create(NamespaceRequestSchema, {
    namespace: spec.namespace,
    team: 'test',
    auth: {
      enabled: false,
      vault: { enabled: true, address: access.defaults.address!, role: spec.role, authMount: t.authMount },
    },
    patterns: [
      create(PatternSchema, {
        name,
        type: spec.type,
        slots: Object.fromEntries(
          Object.entries(spec.slots).map(([slot, b]) => [
            slot,
            create(SlotBindingSchema, { backend: b.backend }),
          ]),
        ),
        settings: create(PatternSettingsSchema, spec.settings),
      }),
    ],
  });
  const assignment = create(PatternAssignmentSchema, {
    name,
    type: spec.type,
    version: 'v1',
    slots: Object.entries(spec.slots).map(([slot, b]) =>
      create(SlotAssignmentSchema, { slot, backend: b.backend, endpoint: b.endpoint }),
    ),
  });
  return createRunner(ns, name, assignment, {
    vault: access,
    logger: memoryLogger(),
    consumer: { retry: { baseDelayMs: 1, maxDelayMs: 5 }, pubsubRedeliveryDelayMs: 5 },
  }) as R;
}

const memstore = { backend: 'memstore', endpoint: 'memory://' };

/** What reaches a memstore topic, read as a plain driver consumer. */
async function rawReader(namespace: string, topic = TOPIC): Promise<Delivery[]> {
  const driver = await createDriver('memstore', { endpoint: 'memory://', namespace });
  await driver.connect();
  const got: Delivery[] = [];
  const sub = await driver.consume!(topic, 'raw-reader', async (d) => {
    got.push(d);
    await d.ack();
  });
  cleanup.push(async () => {
    await sub.close();
    await driver.close();
  });
  return got;
}

async function started<R extends { start(): Promise<void>; stop(): Promise<void> }>(r: R): Promise<R> {
  await r.start();
  cleanup.push(() => r.stop());
  return r;
}

/** A TCP relay to Vault that a test can cut, to make Vault unreachable for one runner. */
async function relay(target: string): Promise<{ address: string; cut(): Promise<void> }> {
  const url = new URL(target);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(url.port), url.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: `http://127.0.0.1:${port}`,
    cut: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

await describeWithServices(['vault', 'nats'], 'envelope encryption with Vault transit keys', () => {
  let t: TransitVault;
  let access: VaultAccess;

  beforeAll(async () => {
    t = await transitVault();
    access = t.access();
  });
  afterAll(async () => {
    await t?.close();
  });

  const encryption = (extra: { dataKeyTtl?: string; dataKeyMaxMessages?: number } = {}) => ({
    encryption: { key: t.key, ...extra },
  });

  it('delivers the plaintext while the backend holds only ciphertext with the wrapped key, key version and nonce', async () => {
    const namespace = uniqueNamespace('enc');
    const raw = await rawReader(namespace);
    const consumer = await started(
      runner<ConsumerRunner>(t, access, {
        type: 'consumer',
        namespace,
        role: t.roles.reader,
        slots: { source: memstore },
        settings: { topic: TOPIC, consumerGroup: 'billing', ...encryption() },
      }),
    );
    const seen: ConsumerDelivery[] = [];
    await consumer.subscribe({}, async (d) => {
      seen.push(d);
      await d.ack();
    });
    const producer = await started(
      runner<ProducerRunner>(t, access, {
        type: 'producer',
        namespace,
        role: t.roles.writer,
        slots: { sink: memstore },
        settings: { topic: TOPIC, ...encryption() },
      }),
    );
    const secret = '{"card":"4111-1111-1111-1111","total":"19.99"}';
    const published = await producer.publish(
      { payload: bytes(secret), headers: { 'x-region': 'eu' } },
      ALICE,
    );

    await eventually(() => seen.length === 1 && raw.length === 1, 10_000, 'the delivery');
    const wire = raw[0]!;
    expect(Buffer.from(wire.payload).includes(Buffer.from('4111'))).toBe(false);
    expect(wire.payload.byteLength).toBe(Buffer.byteLength(secret) + 16);
    expect(wire.headers[ENCRYPTION_HEADER.algorithm]).toBe('AES-256-GCM');
    expect(wire.headers[ENCRYPTION_HEADER.key]).toBe(t.key);
    expect(wire.headers[ENCRYPTION_HEADER.keyVersion]).toBe('1');
    expect(wire.headers[ENCRYPTION_HEADER.wrappedKey]).toMatch(/^vault:v1:[A-Za-z0-9+/=]+$/);
    expect(Buffer.from(wire.headers[ENCRYPTION_HEADER.nonce]!, 'base64')).toHaveLength(12);

    const envelope = seen[0]!.envelope;
    expect(envelope.messageId).toBe(published.messageId);
    expect(text(envelope.payload)).toBe(secret);
    expect(envelope.headers).toEqual({ 'x-region': 'eu' });
  });

  it('stores a claim-checked payload encrypted: the object holds ciphertext, the subscriber gets the plaintext', async () => {
    const namespace = uniqueNamespace('enc');
    const root = mkdtempSync(join(tmpdir(), 'prism-enc-claims-'));
    cleanup.push(async () => rmSync(root, { recursive: true, force: true }));
    const objects = { backend: 'filesystem', endpoint: `file:${root}` };
    const raw = await rawReader(namespace);
    const consumer = await started(
      runner<ConsumerRunner>(t, access, {
        type: 'consumer',
        namespace,
        role: t.roles.reader,
        slots: { source: memstore, objects },
        settings: { topic: TOPIC, consumerGroup: 'billing', ...encryption(), claimCheck: {} },
      }),
    );
    const seen: ConsumerDelivery[] = [];
    await consumer.subscribe({}, async (d) => {
      seen.push(d);
      await d.ack();
    });
    const producer = await started(
      runner<ProducerRunner>(t, access, {
        type: 'producer',
        namespace,
        role: t.roles.writer,
        slots: { sink: memstore, objects },
        settings: { topic: TOPIC, ...encryption(), claimCheck: { threshold: '1KiB' } },
      }),
    );
    const secret = `{"card":"4111-1111-1111-1111","note":"${'x'.repeat(4096)}"}`;
    await producer.publish({ payload: bytes(secret) }, ALICE);

    await eventually(() => seen.length === 1 && raw.length === 1, 10_000, 'the delivery');
    expect(text(seen[0]!.envelope.payload)).toBe(secret);
    // The message carries only the claim; the one stored object is the sealed payload.
    expect(raw[0]!.payload.byteLength).toBe(0);
    const stored = readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => readFileSync(join(e.parentPath, e.name)));
    const bodies = stored.filter((b) => b.byteLength >= Buffer.byteLength(secret));
    expect(bodies).toHaveLength(1);
    expect(bodies[0]!.byteLength).toBe(Buffer.byteLength(secret) + 16);
    for (const file of stored) expect(file.includes(Buffer.from('4111'))).toBe(false);
  });

  it('does not open a ciphertext replayed under another message id: it is dead-lettered, still encrypted', async () => {
    const namespace = uniqueNamespace('enc');
    const raw = await rawReader(namespace);
    const deadLetters = await rawReader(namespace, `${TOPIC}.dead-letter`);
    const consumer = await started(
      runner<ConsumerRunner>(t, access, {
        type: 'consumer',
        namespace,
        role: t.roles.reader,
        slots: { source: memstore, 'dead-letter': memstore },
        settings: { topic: TOPIC, consumerGroup: 'billing', maxRetries: 2, ...encryption() },
      }),
    );
    const seen: ConsumerDelivery[] = [];
    await consumer.subscribe({}, async (d) => {
      seen.push(d);
      await d.ack();
    });

    const producer = await started(
      runner<ProducerRunner>(t, access, {
        type: 'producer',
        namespace,
        role: t.roles.writer,
        slots: { sink: memstore },
        settings: { topic: TOPIC, ...encryption() },
      }),
    );
    const published = await producer.publish({ payload: bytes('transfer 100 to mallory') }, ALICE);
    await eventually(() => raw.length === 1, 5000, 'the sealed message');
    const sealed = raw[0]!;

    // Someone with backend access sends the same ciphertext again as a new message.
    const forger = await createDriver('memstore', { endpoint: 'memory://', namespace });
    await forger.connect();
    cleanup.push(() => forger.close());
    const forgedId = '0190d5a1-0000-7000-8000-000000000001';
    await forger.enqueue!({
      topic: TOPIC,
      payload: sealed.payload,
      headers: { ...sealed.headers, 'prism-message-id': forgedId },
    });
    await eventually(
      () => seen.length === 1 && deadLetters.length === 1,
      10_000,
      'the delivery and the dead letter',
    );
    expect(seen[0]!.envelope.messageId).toBe(published.messageId);
    expect(text(seen[0]!.envelope.payload)).toBe('transfer 100 to mallory');
    const dead = deadLetters[0]!;
    expect(dead.headers['prism-message-id']).toBe(forgedId);
    expect(Buffer.from(dead.payload).equals(Buffer.from(sealed.payload))).toBe(true);
    expect(dead.headers[ENCRYPTION_HEADER.wrappedKey]).toBe(sealed.headers[ENCRYPTION_HEADER.wrappedKey]);
    expect(dead.headers['prism-dead-letter-reason']).toBe(
      `payload could not be opened: ${namespace}/billing: the message cannot be decrypted: it does not authenticate: altered, or copied from another message, topic or namespace`,
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toHaveLength(1);
  });

  it('never reuses a nonce under one data key, even for concurrent publishes', async () => {
    const namespace = uniqueNamespace('enc');
    const raw = await rawReader(namespace);
    const producer = await started(
      runner<ProducerRunner>(t, access, {
        type: 'producer',
        namespace,
        role: t.roles.writer,
        slots: { sink: memstore },
        settings: { topic: TOPIC, ...encryption() },
      }),
    );
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => producer.publish({ payload: bytes(`order ${i}`) }, ALICE)),
    );
    await eventually(() => raw.length === 200, 5000, 'every message');
    expect(new Set(raw.map((m) => m.headers[ENCRYPTION_HEADER.wrappedKey])).size).toBe(1);
    expect(new Set(raw.map((m) => m.headers[ENCRYPTION_HEADER.nonce])).size).toBe(200);
  });

  it('refuses a consumer whose Vault role may not decrypt with PERMISSION_DENIED before it takes a message', async () => {
    const namespace = uniqueNamespace('enc');
    const consumer = await started(
      runner<ConsumerRunner>(t, access, {
        type: 'consumer',
        namespace,
        role: t.roles.stranger,
        slots: { source: memstore },
        settings: { topic: TOPIC, consumerGroup: 'billing', ...encryption() },
      }),
    );
    const subscribing = consumer.subscribe({}, async (d) => d.ack());
    await expect(subscribing).rejects.toMatchObject({
      code: 'E_PERMISSION_DENIED',
      message: `${namespace}/billing: the Vault role ${t.roles.stranger} may not decrypt with the transit key ${t.key}, so it cannot read this encrypted topic`,
    });
  });

  it('refuses a publish with PERMISSION_DENIED when the producer’s Vault role may not get data keys, and sends nothing', async () => {
    const namespace = uniqueNamespace('enc');
    const raw = await rawReader(namespace);
    const producer = await started(
      runner<ProducerRunner>(t, access, {
        type: 'producer',
        namespace,
        role: t.roles.reader,
        slots: { sink: memstore },
        settings: { topic: TOPIC, ...encryption() },
      }),
    );
    await expect(producer.publish({ payload: bytes('secret') }, ALICE)).rejects.toMatchObject({
      code: 'E_PERMISSION_DENIED',
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(raw).toHaveLength(0);
  });

  it('with Vault unreachable, seals with the cached data key within its bounds, then fails UNAVAILABLE and sends nothing in clear', async () => {
    const namespace = uniqueNamespace('enc');
    const raw = await rawReader(namespace);
    const cut = await relay(t.vault.address);
    const producer = await started(
      runner<ProducerRunner>(t, t.access(cut.address), {
        type: 'producer',
        namespace,
        role: t.roles.writer,
        slots: { sink: memstore },
        settings: { topic: TOPIC, ...encryption({ dataKeyMaxMessages: 2 }) },
      }),
    );
    await producer.publish({ payload: bytes('first secret') }, ALICE);
    await cut.cut();
    await producer.publish({ payload: bytes('second secret') }, ALICE);
    await expect(producer.publish({ payload: bytes('third secret') }, ALICE)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
    });
    await eventually(() => raw.length === 2, 5000, 'the two sealed messages');
    await new Promise((r) => setTimeout(r, 200));
    expect(raw).toHaveLength(2);
    for (const m of raw) {
      expect(Buffer.from(m.payload).includes(Buffer.from('secret'))).toBe(false);
      expect(m.headers[ENCRYPTION_HEADER.wrappedKey]).toBe(raw[0]!.headers[ENCRYPTION_HEADER.wrappedKey]);
    }
  });

  it('with Vault unreachable, a consumer opens messages under data keys it unwrapped before, and a new subscription fails UNAVAILABLE', async () => {
    const namespace = uniqueNamespace('enc');
    const cut = await relay(t.vault.address);
    const consumer = await started(
      runner<ConsumerRunner>(t, t.access(cut.address), {
        type: 'consumer',
        namespace,
        role: t.roles.reader,
        slots: { source: memstore },
        settings: { topic: TOPIC, consumerGroup: 'billing', ...encryption() },
      }),
    );
    const seen: string[] = [];
    await consumer.subscribe({}, async (d) => {
      seen.push(text(d.envelope.payload)!);
      await d.ack();
    });
    const producer = await started(
      runner<ProducerRunner>(t, access, {
        type: 'producer',
        namespace,
        role: t.roles.writer,
        slots: { sink: memstore },
        settings: { topic: TOPIC, ...encryption() },
      }),
    );
    await producer.publish({ payload: bytes('before the outage') }, ALICE);
    await eventually(() => seen.length === 1, 5000, 'the first delivery');
    await cut.cut();
    await producer.publish({ payload: bytes('during the outage') }, ALICE);
    await eventually(() => seen.length === 2, 5000, 'the second delivery');
    expect(seen).toEqual(['before the outage', 'during the outage']);
    await expect(consumer.subscribe({ group: 'audit' }, async (d) => d.ack())).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
    });
  });

  it('loses no message when the key is rotated in Vault mid-stream: every message arrives once, under both versions', async () => {
    const namespace = uniqueNamespace('enc');
    const nats = { backend: 'nats', endpoint: natsUrl() };
    const consumer = await started(
      runner<ConsumerRunner>(t, access, {
        type: 'consumer',
        namespace,
        role: t.roles.reader,
        slots: { source: nats },
        settings: { topic: TOPIC, consumerGroup: 'billing', ...encryption() },
      }),
    );
    const received = new Map<string, number>();
    await consumer.subscribe({}, async (d) => {
      const body = text(d.envelope.payload)!;
      received.set(body, (received.get(body) ?? 0) + 1);
      await d.ack();
    });
    const producer = await started(
      runner<ProducerRunner>(t, access, {
        type: 'producer',
        namespace,
        role: t.roles.writer,
        slots: { sink: nats },
        settings: { topic: TOPIC, ...encryption({ dataKeyTtl: '100ms' }) },
      }),
    );
    const raw: Delivery[] = [];
    const reader = await createDriver('nats', { endpoint: natsUrl(), namespace });
    await reader.connect();
    cleanup.push(() => reader.close());
    const sub = await reader.consume!(TOPIC, 'raw-reader', async (d) => {
      raw.push(d);
      await d.ack();
    });
    cleanup.push(() => sub.close());

    const total = 120;
    let rotatedTo = 0;
    for (let i = 0; i < total; i++) {
      if (i === total / 2) rotatedTo = await t.rotate();
      await producer.publish({ payload: bytes(`order ${i}`) }, ALICE);
      await new Promise((r) => setTimeout(r, 5));
    }

    await eventually(() => received.size === total && raw.length === total, 30_000, 'every message');
    await new Promise((r) => setTimeout(r, 300));
    expect([...received.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    for (let i = 0; i < total; i++) expect(received.get(`order ${i}`)).toBe(1);
    const versions = new Set(raw.map((m) => m.headers[ENCRYPTION_HEADER.keyVersion]));
    expect(rotatedTo).toBe(2);
    expect([...versions].sort()).toEqual(['1', '2']);

    // After the rotation, a new group reads the whole backlog: messages sealed under v1 still open.
    const audited = new Set<string>();
    await consumer.subscribe({ group: 'audit' }, async (d) => {
      audited.add(text(d.envelope.payload)!);
      await d.ack();
    });
    await eventually(() => audited.size === total, 30_000, 'the backlog read by a new group');
    expect(audited.has('order 0')).toBe(true);
  });
});
