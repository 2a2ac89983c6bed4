import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { parseDuration } from '../config/units.js';

/** Seconds from "30s", "15m"; 0 for undefined. */
export function durationSeconds(text: string | undefined, flag: string): number {
  if (text === undefined) return 0;
  const ms = parseDuration(text);
  if (ms === undefined || ms === Infinity)
    throw new UsageError(`--${flag} '${text}' is not a duration`, 'for example 30s, 15m, 12h, 7d');
  return Math.ceil(ms / 1000);
}

/** The value from the argument, --file, or stdin (binary-safe) when neither is given. */
export async function readValue(arg: string | undefined, file: string | undefined): Promise<Uint8Array> {
  if (arg !== undefined && file)
    throw new UsageError('give the value as an argument or with --file, not both');
  if (arg !== undefined) return Buffer.from(arg, 'utf8');
  if (file) return readFile(file);
  if (process.stdin.isTTY)
    throw new UsageError('no value given', 'pass it as an argument, with --file, or on stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `-H key=value` flags into a map. */
export function parseHeaders(values: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new UsageError(`header '${value}' is not key=value`);
    headers[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return headers;
}
