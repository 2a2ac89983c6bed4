/**
 * Retries with exponential backoff and jitter, for operations that fail because a backend is down
 * (E_BACKEND_DOWN). Any other failure is returned at once: retrying a bad argument cannot help.
 */
import { isPrismError } from '../errors.js';

export interface RetryOptions {
  /** Attempts after the first; 0 = no retry. */
  maxRetries: number;
  /** Delay before the first retry, doubled for each following one. Default 50 ms. */
  baseDelayMs?: number;
  /** Upper bound of one delay. Default 2 s. */
  maxDelayMs?: number;
  /** Which failures are worth another attempt. Default: PrismError E_BACKEND_DOWN. */
  retryable?: (err: unknown) => boolean;
  /** Called before each retry, e.g. to log. */
  onRetry?: (err: unknown, retry: number, delayMs: number) => void;
  /** [0, 1); injectable for tests. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_BASE_DELAY_MS = 50;
export const DEFAULT_MAX_DELAY_MS = 2_000;

export function isBackendDown(err: unknown): boolean {
  return isPrismError(err) && err.code === 'E_BACKEND_DOWN';
}

/**
 * The delay before retry number `retry` (1-based): "equal jitter", half of the exponential step
 * plus a random part of the other half, so delays grow but concurrent callers spread out.
 */
export function backoffDelay(retry: number, options: RetryOptions): number {
  const base = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const max = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const step = Math.min(max, base * 2 ** (retry - 1));
  const random = options.random ?? Math.random;
  return Math.round(step / 2 + random() * (step / 2));
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `operation`, retrying retryable failures up to `maxRetries` times; rethrows the last one. */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const retryable = options.retryable ?? isBackendDown;
  const sleep = options.sleep ?? defaultSleep;
  for (let retry = 0; ; retry++) {
    try {
      return await operation(retry + 1);
    } catch (err) {
      if (retry >= options.maxRetries || !retryable(err)) throw err;
      const delay = backoffDelay(retry + 1, options);
      options.onRetry?.(err, retry + 1, delay);
      await sleep(delay);
    }
  }
}
