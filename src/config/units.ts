/** Parsing of the duration and size strings used in namespace files. */

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1000,
  KiB: 1024,
  MB: 1000 ** 2,
  MiB: 1024 ** 2,
  GB: 1000 ** 3,
  GiB: 1024 ** 3,
};

/** Milliseconds for "30s", "15m", "12h", "7d", "250ms"; Infinity for "forever"; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === 'forever') return Infinity;
  const match = /^([0-9]+)(ms|s|m|h|d)$/.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Bytes for "512KiB", "1MiB", "1000"; undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const match = /^([0-9]+)(B|KB|KiB|MB|MiB|GB|GiB)?$/.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]) * (SIZE_UNITS[match[2] ?? 'B'] as number);
  return Number.isSafeInteger(value) ? value : undefined;
}
