/**
 * `isolation` on a namespace and on a pattern: which runners the proxy launches as processes.
 * Launched runners serve keyvalue, producer and consumer, and take no Vault credentials.
 */
import { describe, expect, it } from 'vitest';
import { effectiveIsolation } from '../../../src/config/isolation.js';
import {
  check,
  keyvaluePattern,
  mailboxPattern,
  consumerPattern,
  producerPattern,
  sessionNamespace,
  textAt,
  toYaml,
  validNamespace,
  withRule,
  type Obj,
} from '../../support/factories.js';

function loadNamespaceRequest(ns: Obj) {
  const { loaded, diagnostics } = check(ns);
  expect(diagnostics).toEqual([]);
  return loaded[0]!.request;
}

describe('isolation', () => {
  it('accepts none, namespace and pattern on a namespace and on its patterns', () => {
    for (const value of ['none', 'namespace', 'pattern']) {
      const { diagnostics } = check(
        validNamespace({ isolation: value, patterns: [keyvaluePattern({ isolation: value })] }),
      );
      expect(diagnostics).toEqual([]);
    }
  });

  it('refuses an unknown isolation value', () => {
    const { diagnostics } = check(validNamespace({ isolation: 'process' }));
    expect(diagnostics.map((d) => [d.path, d.severity])).toEqual([['/isolation', 'error']]);
  });

  it('lets a pattern override the namespace, and keeps mailbox and session-manager in the proxy', () => {
    const ns = loadNamespaceRequest(
      validNamespace({
        isolation: 'pattern',
        patterns: [
          keyvaluePattern(),
          producerPattern({ isolation: 'none' }),
          keyvaluePattern({ name: 'shared', isolation: 'namespace' }),
          mailboxPattern(),
        ],
      }),
    );
    expect(ns.patterns.map((p) => [p.name, effectiveIsolation(ns, p)])).toEqual([
      ['cache', 'pattern'],
      ['events', 'none'],
      ['shared', 'namespace'],
      ['inbox', 'none'],
    ]);
  });

  it('defaults to none', () => {
    const ns = loadNamespaceRequest(validNamespace());
    expect(effectiveIsolation(ns, ns.patterns[0]!)).toBe('none');
  });

  it('refuses isolation on a mailbox pattern, pointing at its isolation key', () => {
    const text = toYaml(validNamespace({ patterns: [mailboxPattern({ isolation: 'pattern' })] }));
    const found = withRule(check(text).diagnostics, 'E_ISOLATION_TYPE');
    expect(found.map((d) => [d.message, d.path])).toEqual([
      [
        "pattern 'inbox' (mailbox) cannot run in a launched runner process: only keyvalue, producer and consumer can",
        '/patterns/0/isolation',
      ],
    ]);
    expect(textAt(text, found[0]!)).toBe('pattern');
  });

  it('refuses a launched runner in a namespace with Vault sessions', () => {
    const found = withRule(
      check(sessionNamespace([keyvaluePattern()], { isolation: 'namespace' })).diagnostics,
      'E_ISOLATION_VAULT',
    );
    expect(found.map((d) => [d.message, d.path])).toEqual([
      [
        "pattern 'cache' (keyvalue) has isolation namespace, but its backend credentials come from Vault, whose sessions only the proxy holds",
        '/isolation',
      ],
    ]);
  });

  it('refuses a launched runner whose slot takes vault:// credentials', () => {
    const found = withRule(
      check(
        validNamespace({
          patterns: [
            keyvaluePattern({
              isolation: 'pattern',
              slots: { store: { backend: 'redis', credentials: 'vault://database/creds/cache' } },
            }),
          ],
        }),
      ).diagnostics,
      'E_ISOLATION_VAULT',
    );
    expect(found.map((d) => d.path)).toEqual(['/patterns/0/isolation']);
  });

  it('refuses memstore messaging patterns that isolation would put in different processes', () => {
    const onMemstore = {
      patterns: [
        producerPattern({ slots: { sink: { backend: 'memstore' } } }),
        consumerPattern({
          slots: { source: { backend: 'memstore' } },
          settings: { topic: 'orders.events', consumer_group: 'billing' },
        }),
      ],
    };
    const split = withRule(
      check(validNamespace({ ...onMemstore, isolation: 'pattern' })).diagnostics,
      'E_ISOLATION_MEMSTORE',
    );
    expect(split.map((d) => [d.path, d.message])).toEqual([
      [
        '/isolation',
        "pattern 'events' (producer) would run in a process of its own (isolation pattern) with a memstore slot, so it would share no message with this namespace's other memstore messaging patterns",
      ],
      [
        '/isolation',
        "pattern 'billing' (consumer) would run in a process of its own (isolation pattern) with a memstore slot, so it would share no message with this namespace's other memstore messaging patterns",
      ],
    ]);
    expect(check(validNamespace({ ...onMemstore, isolation: 'namespace' })).diagnostics).toEqual([]);
  });

  describe('remote_runner (E_REMOTE_RUNNER)', () => {
    it('accepts host:port for a keyvalue, producer or consumer pattern, and places it remote', () => {
      for (const endpoint of ['runners.internal:50100', '10.0.0.7:443', '[fd00::7]:50100']) {
        const ns = validNamespace({ patterns: [keyvaluePattern({ remote_runner: endpoint })] });
        expect(check(ns).diagnostics).toEqual([]);
        const request = loadNamespaceRequest(ns);
        expect(effectiveIsolation(request, request.patterns[0]!)).toBe('remote');
      }
    });

    it('refuses an endpoint that is not host:port, pointing at it', () => {
      for (const endpoint of ['runners.internal', 'http://runners:50100', 'runners:0', 'runners:70000']) {
        const text = toYaml(validNamespace({ patterns: [keyvaluePattern({ remote_runner: endpoint })] }));
        const found = withRule(check(text).diagnostics, 'E_REMOTE_RUNNER');
        expect(found.map((d) => [d.message, d.path, d.severity])).toEqual([
          [
            `pattern 'cache' (keyvalue): remote_runner '${endpoint}' is not host:port`,
            '/patterns/0/remote_runner',
            'error',
          ],
        ]);
        expect(textAt(text, found[0]!)).toContain(endpoint);
      }
    });

    it('refuses a remote runner for a mailbox pattern', () => {
      const found = withRule(
        check(validNamespace({ patterns: [mailboxPattern({ remote_runner: 'runners:50100' })] })).diagnostics,
        'E_REMOTE_RUNNER',
      );
      expect(found.map((d) => d.message)).toEqual([
        "pattern 'inbox' (mailbox) cannot be served by a remote runner: only keyvalue, producer and consumer can",
      ]);
    });

    it('refuses a remote runner with an isolation of its own, pointing at the isolation', () => {
      const found = withRule(
        check(
          validNamespace({
            patterns: [keyvaluePattern({ remote_runner: 'runners:50100', isolation: 'pattern' })],
          }),
        ).diagnostics,
        'E_REMOTE_RUNNER',
      );
      expect(found.map((d) => d.path)).toEqual(['/patterns/0/isolation']);
    });

    it('refuses a remote runner in a namespace with Vault sessions', () => {
      const found = withRule(
        check(sessionNamespace([keyvaluePattern({ remote_runner: 'runners:50100' })])).diagnostics,
        'E_REMOTE_RUNNER',
      );
      expect(found.map((d) => [d.message, d.path])).toEqual([
        [
          "pattern 'cache' (keyvalue) names a remote_runner, but its backend credentials come from Vault, whose sessions only the proxy holds",
          '/patterns/0/remote_runner',
        ],
      ]);
    });

    it('leaves a remote pattern out of the namespace-isolation process', () => {
      const request = loadNamespaceRequest(
        validNamespace({
          isolation: 'namespace',
          patterns: [keyvaluePattern({ remote_runner: 'runners:50100' })],
        }),
      );
      expect(effectiveIsolation(request, request.patterns[0]!)).toBe('remote');
    });
  });
});
