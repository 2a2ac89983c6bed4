/**
 * Retries `fn` until it resolves, every `intervalMs`, and fails with the last error once
 * `timeoutMs` has passed: for what a server does on its own time (a reload, a takeover).
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T>,
  { timeoutMs = 15_000, intervalMs = 200 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`${what} did not happen within ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
