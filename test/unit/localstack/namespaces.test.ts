import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { NamespaceRequestSchema } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { loadEmbeddedNamespaces, selectEmbedded } from '../../../src/localstack/namespaces.js';

function ns(name: string, ...backends: string[]) {
  return create(NamespaceRequestSchema, {
    namespace: name,
    patterns: backends.map((backend, i) => ({
      name: `p${i}`,
      type: 'keyvalue',
      slots: { store: { backend } },
    })),
  });
}

describe('which namespaces the embedded stack runs', () => {
  it('runs namespaces on memstore and sqlite only, and skips the others saying which backends they need', () => {
    const selection = selectEmbedded([
      { request: ns('local', 'memstore', 'sqlite'), file: 'a.yaml' },
      { request: ns('orders', 'redis', 'memstore', 'postgres', 'redis'), file: 'b.yaml' },
    ]);
    expect(selection.runnable.map((r) => r.request.namespace)).toEqual(['local']);
    expect(selection.skipped).toEqual([
      { namespace: 'orders', reason: 'needs postgres, redis, which only the Docker stack runs' },
    ]);
  });

  it('accepts the embedded playground example as it is', async () => {
    const selection = await loadEmbeddedNamespaces(['examples/namespaces/embedded-playground.yaml']);
    expect(selection.runnable.map((r) => r.request.namespace)).toEqual(['playground']);
    expect(selection.skipped).toEqual([]);
  });
});
