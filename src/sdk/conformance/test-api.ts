/**
 * The test functions a conformance suite needs, passed in by the caller (vitest's, or any
 * runner's with the same shape), so prismctl/sdk does not load a test framework at run time.
 */
export interface TestApi {
  describe: (title: string, body: () => void) => void;
  it: (title: string, body: () => Promise<void> | void, timeoutMs?: number) => void;
  beforeAll: (body: () => unknown, timeoutMs?: number) => void;
  afterAll: (body: () => unknown, timeoutMs?: number) => void;
  expect: (actual: unknown) => {
    toBe(expected: unknown): void;
    toEqual(expected: unknown): void;
    toBeUndefined(): void;
    toBeGreaterThan(n: number): void;
    toBeLessThanOrEqual(n: number): void;
  };
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);
