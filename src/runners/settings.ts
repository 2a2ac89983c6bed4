/**
 * Pattern settings as runners use them: the namespace's values, else the registry's defaults
 * (src/config/registry.ts), parsed into milliseconds, bytes and counts. Validation already
 * rejected malformed values when the namespace was applied; a runner given one anyway refuses to
 * be built, naming the setting.
 */
import { PATTERNS, type SettingName } from '../config/registry.js';
import { parseDuration, parseSize } from '../config/units.js';
import type { PatternSettings } from '../gen/prism/config/v1/namespace_pb.js';
import { PrismError } from '../errors.js';

/** Reads one pattern's settings; `label` ("orders/cache") names it in errors. */
export class SettingsReader {
  constructor(
    private readonly type: string,
    private readonly label: string,
    private readonly settings: PatternSettings | undefined,
  ) {}

  private fallback(name: SettingName): string | number | undefined {
    return PATTERNS[this.type]?.defaults[name];
  }

  private invalid(name: SettingName, value: unknown, expected: string): PrismError {
    return new PrismError(
      'E_INVALID_ARGUMENT',
      `${this.label}: setting ${name} is ${JSON.stringify(value)}, expected ${expected}`,
    );
  }

  /** A string setting; `undefined` when neither set nor defaulted. */
  string(name: SettingName, value: string | undefined): string | undefined {
    if (value !== undefined && value !== '') return value;
    const fallback = this.fallback(name);
    return fallback === undefined ? undefined : String(fallback);
  }

  /** Milliseconds (Infinity for "forever"); `undefined` when neither set nor defaulted. */
  duration(name: SettingName, value: string | undefined): number | undefined {
    const text = this.string(name, value);
    if (text === undefined) return undefined;
    const ms = parseDuration(text);
    if (ms === undefined) throw this.invalid(name, text, 'a duration such as 250ms, 30s, 15m, 12h or 7d');
    return ms;
  }

  size(name: SettingName, value: string | undefined): number | undefined {
    const text = this.string(name, value);
    if (text === undefined) return undefined;
    const bytes = parseSize(text);
    if (bytes === undefined) throw this.invalid(name, text, 'a size such as 512KiB or 1MiB');
    return bytes;
  }

  integer(name: SettingName, value: number | undefined, min: number): number | undefined {
    const resolved = value ?? this.fallback(name);
    if (resolved === undefined) return undefined;
    const n = Number(resolved);
    if (!Number.isSafeInteger(n) || n < min) throw this.invalid(name, resolved, `an integer >= ${min}`);
    return n;
  }

  get raw(): PatternSettings | undefined {
    return this.settings;
  }
}

export function required<T>(label: string, name: SettingName, value: T | undefined): T {
  if (value === undefined) {
    throw new PrismError('E_INVALID_ARGUMENT', `${label}: setting ${name} is required`);
  }
  return value;
}
