/** Validation of a producer's `schema` setting (docs/schemas.md, Enforcement). */
import { describe, expect, it } from 'vitest';
import {
  check,
  consumerPattern,
  producerPattern,
  validNamespace,
  withRule,
} from '../../support/factories.js';

const withSchema = (schema: unknown) =>
  validNamespace({ patterns: [producerPattern({ settings: { topic: 'orders.events', schema } })] });

describe('producer schema setting', () => {
  it.each([true, false])('accepts a value subject of its own namespace (enforce %s)', (enforce) => {
    expect(check(withSchema({ subject: 'orders.events-value', enforce })).diagnostics).toEqual([]);
  });

  it('refuses a schema without a subject', () => {
    const [d] = withRule(check(withSchema({ enforce: true })).diagnostics, 'E_SCHEMA_SUBJECT');
    expect(d?.message).toBe("pattern 'events' (producer) sets schema but no schema.subject");
    expect(d?.path).toBe('/patterns/0/settings/schema');
    expect(d?.hint).toBe('for example subject: orders.events-value');
  });

  it('refuses a subject of another namespace, pointing at it', () => {
    const [d] = withRule(
      check(withSchema({ subject: 'billing.events-value' })).diagnostics,
      'E_SCHEMA_SUBJECT',
    );
    expect(d?.message).toBe(
      "pattern 'events' (producer) schema.subject 'billing.events-value' belongs to namespace 'billing', not 'orders'",
    );
    expect(d?.path).toBe('/patterns/0/settings/schema/subject');
  });

  it('refuses a key subject: payloads are values', () => {
    const [d] = withRule(check(withSchema({ subject: 'orders.events-key' })).diagnostics, 'E_SCHEMA_SUBJECT');
    expect(d?.message).toBe(
      "pattern 'events' (producer) schema.subject 'orders.events-key' is a key subject; the producer checks payloads, which are values",
    );
    expect(d?.hint).toBe('use orders.events-value');
  });

  it('refuses a subject that is not <namespace>.<topic>-value', () => {
    const [d] = withRule(check(withSchema({ subject: 'orders-events' })).diagnostics, 'E_SCHEMA_SUBJECT');
    expect(d?.message).toBe(
      "pattern 'events' (producer) schema.subject 'orders-events' is not a registry subject <namespace>.<topic>-value",
    );
  });

  it('refuses enforce that is not a boolean', () => {
    const { diagnostics } = check(withSchema({ subject: 'orders.events-value', enforce: 'yes' }));
    expect(diagnostics.map((d) => [d.rule, d.path])).toEqual([
      ['E_SCHEMA_TYPE', '/patterns/0/settings/schema/enforce'],
    ]);
  });

  it('does not apply to a consumer', () => {
    const ns = validNamespace({
      patterns: [
        consumerPattern({
          settings: {
            topic: 'orders.events',
            consumer_group: 'billing',
            schema: { subject: 'orders.events-value' },
          },
        }),
      ],
    });
    const [d] = withRule(check(ns).diagnostics, 'E_SETTING_NOT_APPLICABLE');
    expect(d?.message).toBe("setting 'schema' does not apply to consumer");
  });
});
