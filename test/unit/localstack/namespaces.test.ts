import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { NamespaceRequestSchema } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import {
  followStack,
  loadEmbeddedNamespaces,
  selectEmbedded,
  selectRunnable,
} from '../../../src/localstack/namespaces.js';

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

describe('namespaces written for the catalog stack follow the stack that runs', () => {
  const catalog = { issuer: 'http://127.0.0.1:5556/dex', vault: 'http://127.0.0.1:8200' };
  const moved = { issuer: 'http://127.0.0.1:41000', vault: 'http://127.0.0.1:18200' };
  const secured = (name: string, issuer: string, vault?: string) =>
    create(NamespaceRequestSchema, {
      namespace: name,
      patterns: [{ name: 'kv', type: 'keyvalue', slots: { store: { backend: 'postgres' } } }],
      auth: {
        enabled: true,
        issuer,
        audiences: ['prismctl'],
        ...(vault ? { vault: { enabled: true, address: vault, role: `prism-${name}` } } : {}),
      },
    });

  it("takes this stack's issuer and Vault in place of the catalog's, and leaves any other as written", () => {
    const loaded = [
      { request: secured('profiles', catalog.issuer, catalog.vault), file: 'a.yaml' },
      { request: secured('sessions', catalog.issuer), file: 'b.yaml' },
      {
        request: secured('elsewhere', 'https://login.example.com', 'https://vault.example.com'),
        file: 'c.yaml',
      },
      { request: ns('open', 'redis'), file: 'd.yaml' },
    ];
    const { loaded: followed, followed: names } = followStack(loaded, catalog, moved);
    expect(names).toEqual(['profiles', 'sessions']);
    expect(followed.map((l) => [l.request.auth?.issuer ?? '', l.request.auth?.vault?.address ?? ''])).toEqual(
      [
        [moved.issuer, moved.vault],
        [moved.issuer, ''],
        ['https://login.example.com', 'https://vault.example.com'],
        ['', ''],
      ],
    );
    // The files' own requests are not changed.
    expect(loaded[0]!.request.auth!.issuer).toBe(catalog.issuer);

    const selection = selectRunnable(followed, {
      backends: new Set(['postgres', 'redis']),
      where: 'this stack does not run',
      ...moved,
    });
    expect(selection.runnable.map((r) => r.request.namespace)).toEqual(['profiles', 'sessions', 'open']);
    expect(selection.skipped).toEqual([
      {
        namespace: 'elsewhere',
        reason: "trusts issuer https://login.example.com, and this stack's issuer is http://127.0.0.1:41000",
      },
    ]);
  });

  it('skips a namespace whose Vault is not the stack’s, or that needs Vault on a stack without one', () => {
    const other = secured('other', moved.issuer, 'http://127.0.0.1:9999');
    const offer = { backends: new Set(['postgres']), where: '-', issuer: moved.issuer };
    expect(selectRunnable([{ request: other, file: 'x' }], { ...offer, vault: moved.vault }).skipped).toEqual(
      [
        {
          namespace: 'other',
          reason: "uses the Vault at http://127.0.0.1:9999, and this stack's Vault is http://127.0.0.1:18200",
        },
      ],
    );
    expect(selectRunnable([{ request: other, file: 'x' }], offer).skipped).toEqual([
      { namespace: 'other', reason: 'needs Vault, and this stack runs no Vault' },
    ]);
  });

  it('changes nothing when the stack runs at the catalog ports with Dex', () => {
    const loaded = [{ request: secured('profiles', catalog.issuer, catalog.vault), file: 'a.yaml' }];
    const result = followStack(loaded, catalog, catalog);
    expect(result.followed).toEqual([]);
    expect(result.loaded[0]).toBe(loaded[0]);
  });
});
