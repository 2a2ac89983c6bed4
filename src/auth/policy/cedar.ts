import { createRequire } from 'node:module';
import type * as Cedar from '@cedar-policy/cedar-wasm/nodejs';

export type * from '@cedar-policy/cedar-wasm/nodejs';

let engine: typeof Cedar | undefined;

/**
 * Cedar's own parser, validator and authorizer (@cedar-policy/cedar-wasm), loaded on first use:
 * the WebAssembly module costs ~30 ms to instantiate, which commands that never evaluate a policy
 * should not pay.
 */
export function cedar(): typeof Cedar {
  engine ??= createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as typeof Cedar;
  return engine;
}

/** A Cedar string literal: Cedar's escapes, not JSON's (\u{...}, not \uXXXX). */
export function cedarString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\u{${code.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}
