import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import type { DriverOptions } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import {
  NamespaceRequestSchema,
  PatternAssignmentSchema,
  PatternSchema,
  SlotAssignmentSchema,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';
import type { ConsumerRunner } from '../../../src/runners/consumer/runner.js';
import { createRunner } from '../../../src/runners/create-runner.js';
import type { KeyValueRunner } from '../../../src/runners/keyvalue/runner.js';
import type { ProducerRunner } from '../../../src/runners/producer/runner.js';
import type { SessionManagerRunner } from '../../../src/runners/session-manager/runner.js';
import { SlotSet, type DriverFactory } from '../../../src/runners/slots.js';
import { buildRunner } from './helpers.js';

describe('createRunner', () => {
  it('builds the runner of the assigned type with the registry defaults for absent settings', () => {
    const kv = buildRunner<KeyValueRunner>({ type: 'keyvalue', slots: { store: 'memstore' } });
    expect(kv.type).toBe('keyvalue');
    expect(kv.settings).toEqual({ defaultTtlMs: 0, maxValueSizeBytes: 1024 ** 2, maxValueSizeText: '1MiB' });

    const producer = buildRunner<ProducerRunner>({
      type: 'producer',
      slots: { sink: 'memstore' },
      settings: { topic: 't' },
    });
    expect(producer.settings).toEqual({
      topic: 't',
      maxRetries: 3,
      batchSize: 1,
      batchIntervalMs: 10,
      dedupWindowMs: 0,
    });

    const consumer = buildRunner<ConsumerRunner>({
      type: 'consumer',
      slots: { source: 'memstore' },
      settings: { topic: 't', consumerGroup: 'g', maxRetries: 0 },
    });
    expect(consumer.settings).toEqual({ topic: 't', group: 'g', maxRetries: 0, ackTimeoutMs: 30_000 });
    expect(consumer.maxDeliveries).toBe(1);

    const sessions = buildRunner<SessionManagerRunner>({
      type: 'session-manager',
      slots: { store: 'memstore' },
    });
    expect(sessions.settings).toEqual({ sessionTtlMs: 3_600_000, idleTimeoutMs: 900_000 });
  });

  it('names the namespace and pattern of a malformed or missing setting', () => {
    expect(() =>
      buildRunner({
        type: 'keyvalue',
        namespace: 'orders',
        name: 'cache',
        slots: { store: 'memstore' },
        settings: { defaultTtl: '15 minutes' },
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'E_INVALID_ARGUMENT',
        message: expect.stringMatching(/^orders\/cache: setting default_ttl is "15 minutes"/),
      }),
    );
    expect(() =>
      buildRunner({
        type: 'consumer',
        namespace: 'orders',
        name: 'billing',
        slots: { source: 'memstore' },
        settings: { topic: 't' },
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'E_INVALID_ARGUMENT',
        message: 'orders/billing: setting consumer_group is required',
      }),
    );
  });

  it('refuses a pattern the namespace does not declare', () => {
    const ns = create(NamespaceRequestSchema, {
      namespace: 'orders',
      patterns: [create(PatternSchema, { name: 'cache', type: 'keyvalue' })],
    });
    expect(() =>
      createRunner(ns, 'other', create(PatternAssignmentSchema, { name: 'other', type: 'keyvalue' })),
    ).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }));
  });

  it('hands each driver the slot endpoint, namespace, data directory and resolved credentials', async () => {
    const seen: DriverOptions[] = [];
    const capture: DriverFactory = async (backend, options) => {
      seen.push(options);
      return createDriver(backend, options);
    };
    const credentials = async (ref: string) =>
      ref === '${KV_PASSWORD}' ? { username: 'app', password: 's3cret' } : undefined;
    const runner = buildRunner(
      { type: 'keyvalue', namespace: 'orders', slots: { store: 'memstore' } },
      { driverFactory: capture, credentials, dataDir: '/tmp/prism-data' },
    );
    await runner.start();
    await runner.stop();
    expect(seen).toEqual([{ endpoint: 'memory://', namespace: 'orders', dataDir: '/tmp/prism-data' }]);

    // A slot that names credentials gets them from the resolver, and refuses without one.
    const assignment = create(SlotAssignmentSchema, {
      slot: 'store',
      backend: 'memstore',
      credentialRef: '${KV_PASSWORD}',
    });
    const withResolver = new SlotSet('orders', 'cache', 'keyvalue', [assignment], {
      driverFactory: capture,
      credentials,
    });
    await withResolver.start();
    await withResolver.stop();
    expect(seen[1]).toEqual({
      endpoint: 'memory://',
      namespace: 'orders',
      credentials: { username: 'app', password: 's3cret' },
    });
    const without = new SlotSet('orders', 'cache', 'keyvalue', [assignment], { driverFactory: capture });
    await expect(without.start()).rejects.toMatchObject({
      code: 'E_INVALID_ARGUMENT',
      message: expect.stringContaining('no credential resolver'),
    });
  });
});
