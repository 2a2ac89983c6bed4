import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { servedNamespaces } from '../../../src/localstack/up-readiness.js';

/** Exposition text as prom-client (the proxy's metrics library) writes it. */
async function exposition(
  series: Record<string, number>,
  other: Record<string, number> = {},
): Promise<string> {
  const registry = new Registry();
  const served = new Gauge({
    name: 'prism_proxy_namespace_served',
    help: 'Namespaces served',
    labelNames: ['namespace'],
    registers: [registry],
  });
  for (const [namespace, value] of Object.entries(series)) served.set({ namespace }, value);
  const lookalike = new Gauge({
    name: 'prism_proxy_namespace_served_total',
    help: 'A different series whose name starts the same',
    labelNames: ['namespace'],
    registers: [registry],
  });
  for (const [namespace, value] of Object.entries(other)) lookalike.set({ namespace }, value);
  return registry.metrics();
}

describe('servedNamespaces', () => {
  it('lists the namespaces whose prism_proxy_namespace_served series is 1', async () => {
    expect([...servedNamespaces(await exposition({ orders: 1, billing: 1 }))].sort()).toEqual([
      'billing',
      'orders',
    ]);
  });

  it('leaves out a series at 0 and series of other metrics', async () => {
    expect([...servedNamespaces(await exposition({ orders: 0 }, { billing: 1 }))]).toEqual([]);
  });

  it('does not take a namespace for another whose name it begins', async () => {
    expect([...servedNamespaces(await exposition({ 'orders-eu': 1 }))]).toEqual(['orders-eu']);
    expect(servedNamespaces(await exposition({ 'orders-eu': 1 })).has('orders')).toBe(false);
  });

  it('undoes the escapes of label values', async () => {
    expect([...servedNamespaces(await exposition({ 'a"b\\c': 1 }))]).toEqual(['a"b\\c']);
  });

  it('finds nothing in an empty or unrelated body', () => {
    expect(servedNamespaces('').size).toBe(0);
    expect(servedNamespaces('not ready\n').size).toBe(0);
  });
});
