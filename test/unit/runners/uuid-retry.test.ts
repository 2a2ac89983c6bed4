import { describe, expect, it } from 'vitest';
import { BackendDownError } from '../../../src/drivers/interfaces.js';
import { PrismError } from '../../../src/errors.js';
import { backoffDelay, withRetry } from '../../../src/runners/retry.js';
import { isUuidV7, uuidv7, uuidv7Time } from '../../../src/runners/uuid.js';

describe('uuidv7', () => {
  it('makes RFC 9562 version 7 ids carrying the creation millisecond', () => {
    const id = uuidv7(1_700_000_000_123);
    expect(isUuidV7(id)).toBe(true);
    expect(uuidv7Time(id)).toBe(1_700_000_000_123);
  });

  it('makes strictly increasing ids within one millisecond and when the clock steps back', () => {
    const ids = [
      uuidv7(2_000_000_000_000),
      ...Array.from({ length: 5000 }, () => uuidv7(2_000_000_000_000)),
      uuidv7(1),
    ];
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('keeps the random part random across many ids (no repeated tail over 3,000 ids)', () => {
    const tails = Array.from({ length: 3000 }, (_, i) => uuidv7(3_000_000_000_000 + i).slice(19));
    expect(new Set(tails).size).toBe(3000);
  });
});

describe('withRetry', () => {
  const instant = { sleep: async () => undefined, random: () => 0.5 };

  it('retries a backend-down failure up to max_retries, then gives up with the last error', async () => {
    let calls = 0;
    const failing = withRetry(
      async () => {
        calls++;
        throw new BackendDownError('kafka', `call ${calls}`);
      },
      { maxRetries: 2, ...instant },
    );
    await expect(failing).rejects.toMatchObject({
      code: 'E_BACKEND_DOWN',
      message: 'kafka is unavailable: call 3',
    });
    expect(calls).toBe(3);
  });

  it('does not retry other failures', async () => {
    let calls = 0;
    const failing = withRetry(
      async () => {
        calls++;
        throw new PrismError('E_INVALID_ARGUMENT', 'bad');
      },
      { maxRetries: 5, ...instant },
    );
    await expect(failing).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    expect(calls).toBe(1);
  });

  it('backs off exponentially with jitter, capped', () => {
    const options = { maxRetries: 9, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, { ...options, random: () => 0 }))).toEqual([
      50, 100, 200, 400, 500,
    ]);
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, { ...options, random: () => 0.999999 }))).toEqual([
      100, 200, 400, 800, 1000,
    ]);
  });
});
