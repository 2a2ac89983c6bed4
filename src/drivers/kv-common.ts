/**
 * Checks and encodings shared by the keyvalue drivers (memstore, sqlite, redis, postgres), so that
 * every backend accepts and rejects the same arguments and every scan cursor is equally opaque.
 */
import type { Capability } from './interfaces.js';

/** What every keyvalue driver in this folder implements. */
export const KEYVALUE_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  'keyvalue',
  'ttl',
  'scan',
]);

/** Largest page a scan returns, whatever `limit` asks for. */
export const MAX_SCAN_LIMIT = 10_000;

/**
 * A namespace becomes part of key prefixes (`<namespace>:`) and SQL values. Registry names are
 * `[a-z0-9-]`; test namespaces add upper case, `_` and `.`. A `:` would let two namespaces share
 * keys (`a` + `b:c` vs `a:b` + `c`), so it is refused.
 */
export function checkNamespace(namespace: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(namespace)) {
    throw new RangeError(
      `invalid namespace ${JSON.stringify(namespace)}: use letters, digits, '-', '_' or '.'`,
    );
  }
  return namespace;
}

/** `set` TTL: 0 or absent means no expiry. Fractions round up so a TTL never becomes 0 by rounding. */
export function checkSetTtl(ttlMs: number | undefined): number {
  if (ttlMs === undefined) return 0;
  if (!Number.isFinite(ttlMs) || ttlMs < 0) {
    throw new RangeError(`ttlMs must be a finite number >= 0 (0: no expiry), got ${ttlMs}`);
  }
  return Math.ceil(ttlMs);
}

/** `expire` TTL: must be positive; removing an expiry is `persist`. */
export function checkExpireTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(
      `ttlMs must be a finite number > 0 (use persist() to remove an expiry), got ${ttlMs}`,
    );
  }
  return Math.ceil(ttlMs);
}

export function checkScanLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`scan limit must be an integer >= 1, got ${limit}`);
  }
  return Math.min(limit, MAX_SCAN_LIMIT);
}

/**
 * The scan order of every keyvalue backend: ascending by the keys' UTF-8 bytes, which is Unicode
 * code point order (SQLite's BINARY and PostgreSQL's "C" collation give it natively). JavaScript's
 * `<` compares UTF-16 code units instead, which puts U+E000..U+FFFF after astral characters.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (astral code points) sort after U+E000..U+FFFF in code point order.
      x += x <= 0xdfff ? 0x2000 : -0x800;
      y += y <= 0xdfff ? 0x2000 : -0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Opaque cursor carrying the last key of the previous page. */
export function encodeKeyCursor(lastKey: string): string {
  return Buffer.from(lastKey, 'utf8').toString('base64url');
}

export function decodeKeyCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  if (!/^[A-Za-z0-9_-]*$/.test(cursor)) throw new RangeError('invalid scan cursor');
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

/** A Buffer view of the caller's bytes, without copying (clients want Buffers). */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** The host and port of an endpoint URL, for messages: never the user name or password. */
export function safeTarget(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return url.host !== '' ? url.host : url.protocol;
  } catch {
    return 'the configured endpoint';
  }
}

/** A message for an error that may quote a connection string: credentials in URLs are masked. */
export function describeCause(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const masked = message.replace(/\/\/[^/@\s]*@/g, '//***@');
  return typeof code === 'string' && !masked.includes(code) ? `${code}: ${masked}` : masked;
}
