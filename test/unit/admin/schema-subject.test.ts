import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../../src/admin/schemas/errors.js';
import { parseMode, parseSchemaType } from '../../../src/admin/schemas/modes.js';
import { parseVersionRef } from '../../../src/admin/schemas/registry.js';
import { parseSubject } from '../../../src/admin/schemas/subject.js';

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof RegistryError ? err.errorCode : undefined;
  }
  return undefined;
}

describe('subject names (<namespace>.<topic>-key|value)', () => {
  it('splits at the first dot, so topics may contain dots', () => {
    expect(parseSubject('orders.events.v1-value')).toEqual({
      namespace: 'orders',
      topic: 'events.v1',
      part: 'value',
    });
    expect(parseSubject('team-a.audit-key')).toEqual({ namespace: 'team-a', topic: 'audit', part: 'key' });
  });

  it.each([
    'orders-value',
    'orders.events',
    'Orders.events-value',
    'or--ders.events-value',
    'orders-.x-value',
    '.x-value',
    'orders.-value',
  ])('refuses %s with 42208', (subject) => {
    expect(codeOf(() => parseSubject(subject))).toBe(42208);
  });
});

describe('modes, schema types and version references', () => {
  it('reads modes case-insensitively and refuses others with 42203', () => {
    expect(parseMode('full_transitive')).toBe('FULL_TRANSITIVE');
    expect(codeOf(() => parseMode('SIDEWAYS'))).toBe(42203);
  });

  it('defaults the schema type to AVRO, as Confluent clients expect', () => {
    expect(parseSchemaType(undefined)).toBe('AVRO');
    expect(parseSchemaType('json')).toBe('JSON');
    expect(codeOf(() => parseSchemaType('XML'))).toBe(42201);
  });

  it('takes a positive version number, latest or -1, and refuses others with 42202', () => {
    expect(parseVersionRef('3')).toBe(3);
    expect(parseVersionRef('latest')).toBe('latest');
    expect(parseVersionRef('-1')).toBe('latest');
    for (const bad of ['0', '1.5', 'one', '-2']) expect(codeOf(() => parseVersionRef(bad))).toBe(42202);
  });
});
