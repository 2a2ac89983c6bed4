import { create } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  PatternAssignmentSchema,
  NamespaceRequestSchema,
  NamespaceResponseSchema,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { NamespaceTable, retryDelayMs, type RunnerFactory } from '../../../src/proxy/namespace-table.js';
import type { ServedNamespace } from '../../../src/proxy/served-namespace.js';
import type { Runner } from '../../../src/runners/types.js';

const logger = pino({ level: 'silent' });

function served(name: string, version: bigint): ServedNamespace {
  return {
    namespace: create(NamespaceRequestSchema, { namespace: name }),
    assignment: create(NamespaceResponseSchema, {
      version,
      patterns: [create(PatternAssignmentSchema, { name: 'cache', type: 'keyvalue' })],
    }),
  };
}

function call(name: string): Metadata {
  const metadata = new Metadata();
  metadata.set('x-prism-namespace', name);
  return metadata;
}

/** Runners whose start fails while `down` holds the namespace's name. */
function flakyRunners(down: Set<string>, started: string[]): RunnerFactory {
  return async (ns, assignment) => {
    const name = ns.namespace;
    const runner: Runner = {
      namespace: name,
      pattern: 'cache',
      type: 'keyvalue',
      start: async () => {
        if (down.has(name)) throw new Error(`backend of ${name} is down`);
        started.push(`${name}@${assignment.version}`);
      },
      stop: async () => {},
      health: async () => {},
    };
    return runner;
  };
}

describe('NamespaceTable', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('backs off 1 s, doubling, at most 30 s between attempts', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(retryDelayMs)).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });

  it('tries a namespace that failed to start again until it starts; meanwhile its calls are UNAVAILABLE', async () => {
    const down = new Set(['orders']);
    const started: string[] = [];
    const table = new NamespaceTable(flakyRunners(down, started), logger);
    await table.reconcile([served('orders', 1n), served('billing', 1n)]);

    expect(table.names()).toEqual(['billing']);
    expect(table.failingNames()).toEqual(['orders']);
    expect(() => table.route(call('orders'), 'keyvalue')).toThrow(
      expect.objectContaining({
        code: 'E_UNAVAILABLE',
        message:
          "namespace 'orders' is not served yet: its runners failed to start (1 attempt); the proxy tries again in 1 s",
      }),
    );
    // A name nobody wants stays NOT_FOUND.
    expect(() => table.route(call('nobody'), 'keyvalue')).toThrow(
      expect.objectContaining({ code: 'E_NOT_FOUND' }),
    );

    await vi.advanceTimersByTimeAsync(1000);
    expect(() => table.route(call('orders'), 'keyvalue')).toThrow(
      /failed to start \(2 attempts\); the proxy tries again in 2 s/,
    );

    down.delete('orders');
    await vi.advanceTimersByTimeAsync(2000);
    expect(table.names()).toEqual(['billing', 'orders']);
    expect(table.failingNames()).toEqual([]);
    expect(table.route(call('orders'), 'keyvalue').runner.pattern).toBe('cache');
    expect(started).toEqual(['billing@1', 'orders@1']);
    await table.stop();
  });

  it('keeps serving the previous version while a new one fails, and switches once it starts', async () => {
    const down = new Set<string>();
    const started: string[] = [];
    const table = new NamespaceTable(flakyRunners(down, started), logger);
    await table.reconcile([served('orders', 1n)]);
    down.add('orders');
    await table.reconcile([served('orders', 2n)]);

    expect(table.failingNames()).toEqual(['orders']);
    expect(table.route(call('orders'), 'keyvalue').namespace.assignment.version).toBe(1n);

    down.delete('orders');
    await vi.advanceTimersByTimeAsync(1000);
    expect(table.failingNames()).toEqual([]);
    expect(table.route(call('orders'), 'keyvalue').namespace.assignment.version).toBe(2n);
    expect(started).toEqual(['orders@1', 'orders@2']);
    await table.stop();
  });

  it('stops trying a failing namespace once it is no longer wanted, or the table stops', async () => {
    const down = new Set(['orders', 'billing']);
    const started: string[] = [];
    const factory = vi.fn(flakyRunners(down, started));
    const table = new NamespaceTable(factory, logger);
    await table.reconcile([served('orders', 1n), served('billing', 1n)]);
    expect(factory).toHaveBeenCalledTimes(2);

    await table.reconcile([served('billing', 1n)]);
    expect(table.failingNames()).toEqual(['billing']);
    expect(factory).toHaveBeenCalledTimes(3);
    expect(() => table.route(call('orders'), 'keyvalue')).toThrow(
      expect.objectContaining({ code: 'E_NOT_FOUND' }),
    );

    await table.stop();
    expect(table.failingNames()).toEqual([]);
    down.clear();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(factory).toHaveBeenCalledTimes(3);
    expect(started).toEqual([]);
  });
});
