/**
 * `needs.delivery` and E_DELIVERY_AT_MOST_ONCE: a consumer whose source offers only pub/sub gets
 * at-most-once delivery, which validation refuses unless the namespace declares it. No backend of
 * the registry is pub/sub-only today (redis has Streams), so the refused case uses a registry with
 * one more backend, as a plugin would add it.
 */
import { describe, expect, it } from 'vitest';
import { renderCanonical } from '../../../src/config/canonical.js';
import { BACKENDS, type BackendSpec } from '../../../src/config/registry.js';
import { validateSources } from '../../../src/config/validate.js';
import { consumerPattern, producerPattern, textAt, toYaml, validNamespace } from '../../support/factories.js';

const WITH_PUBSUB_ONLY: Record<string, BackendSpec> = {
  ...BACKENDS,
  mqtt: { name: 'mqtt', implements: ['pubsub'], defaultEndpoint: 'mqtt://localhost:1883', durable: false },
};

function check(ns: Record<string, unknown>) {
  const text = toYaml(ns);
  const { report } = validateSources([{ file: 'ns.yaml', text }], { backends: WITH_PUBSUB_ONLY });
  return { text, diagnostics: report.diagnostics };
}

const consumerOn = (backend: string) =>
  consumerPattern({
    slots: { source: { backend } },
    settings: { topic: 'orders.events', consumer_group: 'billing' },
  });

describe('delivery guarantee of consumers', () => {
  it('refuses a consumer whose source offers only pubsub, naming the backends that give at-least-once', () => {
    const { text, diagnostics } = check(validNamespace({ patterns: [consumerOn('mqtt')] }));
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_DELIVERY_AT_MOST_ONCE',
        message:
          "pattern 'billing' (consumer) would get at-most-once delivery: its source mqtt offers only pubsub, so a message published while no member is subscribed is lost, nothing is redelivered after ack_timeout and every subscriber receives every message",
        file: 'ns.yaml',
        line: 8,
        column: 18,
        path: '/patterns/0/slots/source/backend',
        hint: 'bind the source to a backend with at-least-once delivery (memstore, redis, postgres, nats, kafka), or declare `needs: { delivery: at-most-once }`',
      },
    ]);
    expect(textAt(text, diagnostics[0]!)).toBe('mqtt');
  });

  it('accepts that consumer when the namespace declares needs.delivery: at-most-once', () => {
    const { diagnostics } = check(
      validNamespace({ needs: { delivery: 'at-most-once' }, patterns: [consumerOn('mqtt')] }),
    );
    expect(diagnostics).toEqual([]);
  });

  it('still refuses it when the namespace declares at-least-once explicitly', () => {
    const { diagnostics } = check(
      validNamespace({ needs: { delivery: 'at-least-once' }, patterns: [consumerOn('mqtt')] }),
    );
    expect(diagnostics.map((d) => d.rule)).toEqual(['E_DELIVERY_AT_MOST_ONCE']);
  });

  it.each(['memstore', 'redis', 'postgres', 'nats', 'kafka'])(
    'accepts a consumer on %s without a declaration, since its queue gives at-least-once',
    (backend) => {
      expect(check(validNamespace({ patterns: [consumerOn(backend)] })).diagnostics).toEqual([]);
    },
  );

  it('does not apply to a producer: publishing on pubsub only is not refused', () => {
    const producer = producerPattern({ slots: { sink: { backend: 'mqtt' } } });
    expect(check(validNamespace({ patterns: [producer] })).diagnostics).toEqual([]);
  });

  it('refuses a delivery value it does not know, listing the two it does', () => {
    const { diagnostics } = check(validNamespace({ needs: { delivery: 'exactly-once' } }));
    expect(diagnostics.map((d) => [d.rule, d.path])).toEqual([['E_SCHEMA_ENUM', '/needs/delivery']]);
    expect(diagnostics[0]!.hint).toContain('at-least-once');
    expect(diagnostics[0]!.hint).toContain('at-most-once');
  });
});

describe('needs.delivery in the canonical export', () => {
  it('keeps at-most-once in the YAML spelling and leaves an undeclared delivery out', () => {
    const declared = validateSources([
      {
        file: 'a.yaml',
        text: toYaml(validNamespace({ needs: { delivery: 'at-most-once', retention: '1h' } })),
      },
    ]);
    const undeclared = validateSources([{ file: 'b.yaml', text: toYaml(validNamespace()) }]);
    expect(declared.report.errors + undeclared.report.errors).toBe(0);
    const yaml = renderCanonical([declared.loaded[0]!.request], 'yaml');
    expect(yaml).toContain('needs:\n  retention: 1h\n  delivery: at-most-once\n');
    expect(renderCanonical([undeclared.loaded[0]!.request], 'yaml')).not.toContain('delivery');
    const json = JSON.parse(renderCanonical([declared.loaded[0]!.request], 'json')) as {
      needs: Record<string, unknown>;
    };
    expect(json.needs).toEqual({ retention: '1h', delivery: 'at-most-once' });
  });
});
