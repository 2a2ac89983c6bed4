/**
 * Protobuf schemas through the buf CLI (npm package @bufbuild/buf): `.proto` text is compiled with
 * `buf build` into a FileDescriptorSet image, a base64 FileDescriptorSet is taken as it is, and
 * compatibility is `buf breaking <new> --against <old>` with buf's WIRE rule category.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { invalidSchema } from './errors.js';

export interface ParsedProtobuf {
  /** FileDescriptorSet bytes (a buf image). */
  image: Uint8Array;
  normalized: string;
}

/** The file name `.proto` text is compiled as; buf's reports name it with line and column. */
export const PROTO_FILE = 'schema.proto';
const BREAKING_CONFIG = JSON.stringify({ version: 'v2', breaking: { use: ['WIRE'] } });
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Compiled images by the text's hash: transitive checks compile every old version again otherwise. */
const compiled = new Map<string, Uint8Array>();
const COMPILED_MAX = 256;

export async function parseProtobuf(text: string): Promise<ParsedProtobuf> {
  const trimmed = text.trim();
  const fromSet = descriptorSet(trimmed);
  if (fromSet) return { image: fromSet, normalized: trimmed };
  const key = createHash('sha256').update(text).digest('hex');
  const cached = compiled.get(key);
  if (cached) return { image: cached, normalized: text };
  const image = await withTempDir(async (dir) => {
    await writeFile(join(dir, PROTO_FILE), text);
    const result = await buf(['build', dir, '-o', join(dir, 'image.binpb'), '--error-format', 'json']);
    if (result.code !== 0) {
      const problems = bufProblems(`${result.stdout}\n${result.stderr}`, dir);
      throw invalidSchema(`protobuf: ${problems.length > 0 ? problems.join('; ') : result.stderr.trim()}`);
    }
    return new Uint8Array(await readFile(join(dir, 'image.binpb')));
  });
  if (compiled.size >= COMPILED_MAX) compiled.delete(compiled.keys().next().value as string);
  compiled.set(key, image);
  return { image, normalized: text };
}

/** Why data of `writer` (the older image) breaks under `reader` by buf's WIRE rules; empty when none. */
export async function protobufProblems(reader: ParsedProtobuf, writer: ParsedProtobuf): Promise<string[]> {
  return withTempDir(async (dir) => {
    await writeFile(join(dir, 'new.binpb'), reader.image);
    await writeFile(join(dir, 'old.binpb'), writer.image);
    const result = await buf([
      'breaking',
      join(dir, 'new.binpb'),
      '--against',
      join(dir, 'old.binpb'),
      '--config',
      BREAKING_CONFIG,
      '--error-format',
      'json',
    ]);
    if (result.code === 0) return [];
    const problems = bufProblems(result.stdout, dir);
    if (problems.length === 0)
      throw new Error(`buf breaking failed: ${result.stderr.trim() || `exit ${result.code}`}`);
    return problems;
  });
}

function descriptorSet(text: string): Uint8Array | undefined {
  if (!BASE64.test(text) || text.length % 4 !== 0) return undefined;
  try {
    const bytes = new Uint8Array(Buffer.from(text, 'base64'));
    const set = fromBinary(FileDescriptorSetSchema, bytes);
    return set.file.length > 0 ? bytes : undefined;
  } catch {
    return undefined;
  }
}

interface BufResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface BufProblem {
  path?: string;
  start_line?: number;
  start_column?: number;
  type?: string;
  message?: string;
}

/** buf's JSON lines as `file:line:col: RULE: message`, with the temporary directory cut off. */
function bufProblems(stdout: string, dir: string): string[] {
  const problems: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    try {
      const p = JSON.parse(line) as BufProblem;
      const path = (p.path ?? '').replace(`${dir}/`, '').replace(`${dir.replace(/^\//, '')}/`, '');
      const where = p.start_line ? `${path}:${p.start_line}:${p.start_column ?? 1}` : path;
      problems.push(`${where}: ${p.type === 'COMPILE' ? '' : `${p.type}: `}${p.message ?? ''}`);
    } catch {
      problems.push(line.trim().replaceAll(`${dir}/`, ''));
    }
  }
  return problems;
}

let bufBinary: string | undefined;

function bufPath(): string {
  bufBinary ??= join(
    dirname(createRequire(import.meta.url).resolve('@bufbuild/buf/package.json')),
    'bin/buf',
  );
  return bufBinary;
}

function buf(args: string[]): Promise<BufResult> {
  return new Promise((resolveResult, reject) => {
    let binary: string;
    try {
      binary = bufPath();
    } catch (err) {
      reject(
        new Error('protobuf schemas need the buf CLI (npm package @bufbuild/buf), which is not installed', {
          cause: err,
        }),
      );
      return;
    }
    execFile(
      binary,
      args,
      {
        env: { ...process.env, BUF_CACHE_DIR: join(tmpdir(), 'prism-buf-cache') },
        timeout: 30_000,
        maxBuffer: 4 << 20,
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') reject(err as Error);
        else resolveResult({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'prism-proto-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
