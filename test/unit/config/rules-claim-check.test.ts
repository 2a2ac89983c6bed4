import { describe, expect, it } from 'vitest';
import { check, consumerPattern, producerPattern, validNamespace } from '../../support/factories.js';

const rules = (patterns: unknown[]) =>
  check(validNamespace({ patterns })).diagnostics.map((d) => [d.severity, d.rule, d.path, d.message]);

describe('claim_check and the objects slot', () => {
  it.each(['s3', 'filesystem', 'memstore'])('accepts a producer storing large payloads in %s', (backend) => {
    const pattern = producerPattern({
      slots: { sink: { backend: 'kafka' }, objects: { backend } },
      settings: {
        topic: 'orders.events',
        claim_check: { threshold: '1MiB', compression: 'zstd', ttl: '7d' },
      },
    });
    expect(rules([pattern])).toEqual([]);
  });

  it('accepts a consumer that fetches claims from its objects slot', () => {
    const pattern = consumerPattern({
      slots: { source: { backend: 'kafka' }, objects: { backend: 's3' } },
      settings: { topic: 'orders.events', consumer_group: 'billing', claim_check: {} },
    });
    expect(rules([pattern])).toEqual([]);
  });

  it('refuses an objects slot bound to a backend without the objects capability', () => {
    const pattern = producerPattern({
      slots: { sink: { backend: 'kafka' }, objects: { backend: 'redis' } },
      settings: { topic: 'orders.events', claim_check: {} },
    });
    expect(check(validNamespace({ patterns: [pattern] })).diagnostics.map((d) => [d.rule, d.hint])).toEqual([
      ['E_BACKEND_CAPABILITY', 'use one of: memstore, filesystem, s3'],
    ]);
  });

  it('refuses claim_check without an objects slot', () => {
    const pattern = producerPattern({
      settings: { topic: 'orders.events', claim_check: { threshold: '1MiB' } },
    });
    expect(rules([pattern])).toEqual([
      [
        'error',
        'E_CLAIM_CHECK_NO_STORE',
        '/patterns/0/settings/claim_check',
        "pattern 'events' (producer) sets claim_check but binds no 'objects' slot to keep large payloads in",
      ],
    ]);
  });

  it('refuses an objects slot without claim_check, which would store nothing', () => {
    const pattern = producerPattern({ slots: { sink: { backend: 'kafka' }, objects: { backend: 's3' } } });
    expect(rules([pattern])).toEqual([
      [
        'error',
        'E_CLAIM_CHECK_SLOT_UNUSED',
        '/patterns/0/slots/objects',
        "pattern 'events' (producer) binds slot 'objects' but sets no claim_check: nothing would be stored there",
      ],
    ]);
  });

  it('refuses a zero threshold and a zero ttl', () => {
    const pattern = producerPattern({
      slots: { sink: { backend: 'kafka' }, objects: { backend: 's3' } },
      settings: { topic: 'orders.events', claim_check: { threshold: '0', ttl: '0s' } },
    });
    expect(rules([pattern]).map((d) => d[1])).toEqual(['E_CLAIM_CHECK_THRESHOLD', 'E_CLAIM_CHECK_TTL']);
  });

  it('refuses a compression it cannot apply, naming the accepted ones', () => {
    const pattern = producerPattern({
      slots: { sink: { backend: 'kafka' }, objects: { backend: 's3' } },
      settings: { topic: 'orders.events', claim_check: { compression: 'brotli' } },
    });
    const diagnostics = check(validNamespace({ patterns: [pattern] })).diagnostics;
    expect(diagnostics.map((d) => d.path)).toEqual(['/patterns/0/settings/claim_check/compression']);
    expect(diagnostics[0]!.severity).toBe('error');
  });

  it('warns that threshold, compression and ttl do nothing on a consumer', () => {
    const pattern = consumerPattern({
      slots: { source: { backend: 'kafka' }, objects: { backend: 's3' } },
      settings: { topic: 'orders.events', consumer_group: 'billing', claim_check: { ttl: '1d' } },
    });
    expect(rules([pattern])).toEqual([
      [
        'warning',
        'E_CLAIM_CHECK_CONSUMER_FIELD',
        '/patterns/0/settings/claim_check/ttl',
        "pattern 'billing' (consumer) claim_check.ttl has no effect on a consumer: the producer's setting decides; a consumer only fetches claims from its objects slot",
      ],
    ]);
  });

  it('does not warn about max_message_size above the sink limit when the claim threshold is under it', () => {
    const pattern = producerPattern({
      slots: { sink: { backend: 'kafka' }, objects: { backend: 's3' } },
      settings: { topic: 'orders.events', max_message_size: '256MiB', claim_check: { threshold: '512KiB' } },
    });
    expect(rules([pattern])).toEqual([]);
    const inline = producerPattern({ settings: { topic: 'orders.events', max_message_size: '256MiB' } });
    expect(rules([inline]).map((d) => d[1])).toEqual(['E_MESSAGE_SIZE_ABOVE_BACKEND']);
  });
});
