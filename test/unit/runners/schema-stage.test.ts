/**
 * The schema stage's rules that the e2e test (test/e2e/schema-enforcement.test.ts) cannot reach:
 * a runner without a registry refuses a schema setting, and a registry that cannot answer leaves
 * a stamping producer's messages unstamped but refuses an enforcing producer's.
 */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { SchemaSettingSchema } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { PrismError } from '../../../src/errors.js';
import { SchemaCache } from '../../../src/runners/payload/schema-source.js';
import { SchemaStage } from '../../../src/runners/payload/schema-stage.js';
import { buildRunner, bytes, memoryLogger } from './helpers.js';

const message = () => ({
  topic: 'orders.events',
  payload: bytes('{}'),
  headers: { 'prism-message-id': 'm-1' },
});
const unreachable = () =>
  new SchemaCache({
    ttlMs: 1000,
    fetch: () => Promise.reject(new PrismError('E_UNREACHABLE', 'connect ECONNREFUSED 127.0.0.1:1')),
  });

describe('the schema stage', () => {
  it('is refused for a producer built without a registry (runner serve)', () => {
    expect(() =>
      buildRunner({
        type: 'producer',
        namespace: 'orders',
        name: 'events',
        slots: { sink: 'memstore' },
        settings: {
          topic: 'orders.events',
          schema: create(SchemaSettingSchema, { subject: 'orders.events-value', enforce: true }),
        },
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'E_UNAVAILABLE',
        message:
          "orders/events: setting schema needs the admin's schema registry, and this runner has no admin connection",
      }),
    );
  });

  it('without enforce publishes unstamped when the registry cannot answer, warning once', async () => {
    const logger = memoryLogger();
    const stage = new SchemaStage('orders.events-value', false, unreachable(), logger);
    const sealed = await stage.seal(message());
    expect(sealed.headers).toEqual({ 'prism-message-id': 'm-1' });
    await stage.seal(message());
    expect(logger.entries.map((e) => e.msg)).toEqual([
      'schema unknown; publishing without the schema stamp (enforce is off)',
    ]);
  });

  it('with enforce refuses the publish with E_UNAVAILABLE when the registry cannot answer', async () => {
    const stage = new SchemaStage('orders.events-value', true, unreachable());
    await expect(stage.seal(message())).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });
});
