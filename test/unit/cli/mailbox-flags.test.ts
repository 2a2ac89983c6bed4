/** `prismctl mailbox` filter flags as the MailboxFilter the proxy receives. */
import { describe, expect, it } from 'vitest';
import { filterFromFlags, pointInTime } from '../../../src/cli/mailbox-flags.js';

const NOW = Date.parse('2026-12-03T12:00:00Z');

describe('mailbox filter flags', () => {
  it('turns --since/--until durations into times before now, and ISO times into themselves', () => {
    expect(pointInTime('1h', 'since', NOW)).toBe(NOW - 3_600_000);
    expect(pointInTime('7d', 'since', NOW)).toBe(NOW - 7 * 86_400_000);
    expect(pointInTime('2026-12-01T08:00:00Z', 'until', NOW)).toBe(Date.parse('2026-12-01T08:00:00Z'));
  });

  it('refuses what is neither, naming the flag', () => {
    expect(() => pointInTime('yesterday', 'since', NOW)).toThrow(
      "--since 'yesterday' is neither a duration nor a time",
    );
    expect(() => pointInTime('forever', 'until', NOW)).toThrow(
      "--until 'forever' is neither a duration nor a time",
    );
  });

  it('fills every filter field from its flag, and leaves the rest empty', () => {
    expect(
      filterFromFlags(
        {
          since: '30m',
          header: ['order-id=123', 'region=eu=west'],
          subject: 'user:alice',
          tenant: 'acme',
          'correlation-id': 'checkout-7',
        },
        NOW,
      ),
    ).toEqual({
      sinceMs: BigInt(NOW - 1_800_000),
      untilMs: 0n,
      headers: { 'order-id': '123', region: 'eu=west' },
      subject: 'user:alice',
      tenant: 'acme',
      topic: '',
      messageId: '',
      correlationId: 'checkout-7',
    });
  });

  it('refuses a header without =', () => {
    expect(() => filterFromFlags({ header: ['order-id'] }, NOW)).toThrow(
      "header 'order-id' is not key=value",
    );
  });
});
