import { readdirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import { extname, join } from 'node:path';
import type { Diagnostic } from './diagnostics.js';

/** Namespace files larger than this are refused before they are read into memory. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

export interface SourceText {
  /** The path as the user gave it (or found under a directory they gave); "<stdin>" for "-". */
  file: string;
  text: string;
}

export interface ReadResult {
  sources: SourceText[];
  diagnostics: Diagnostic[];
}

const YAML_EXTENSIONS = new Set(['.yaml', '.yml']);

/** Reads namespace sources from files, directories (recursively, *.yaml and *.yml) and "-" (stdin). */
export async function readSources(
  paths: readonly string[],
  stdin: () => Promise<Buffer> = readStdin,
): Promise<ReadResult> {
  const result: ReadResult = { sources: [], diagnostics: [] };
  for (const path of paths) {
    if (path === '-') {
      addBytes(result, '<stdin>', await stdin());
      continue;
    }
    let info;
    try {
      info = statSync(path);
    } catch (err) {
      result.diagnostics.push(fileProblem(path, err));
      continue;
    }
    if (info.isDirectory()) {
      const files = findYamlFiles(path);
      if (files.length === 0) {
        result.diagnostics.push(
          problem(
            path,
            'E_NO_FILES',
            'directory holds no .yaml or .yml files',
            'pass a file or a directory of namespace files',
          ),
        );
      }
      for (const file of files) addFile(result, file);
    } else {
      addFile(result, path);
    }
  }
  return result;
}

// Synchronous reads on purpose: a CLI validating a thousand small files is fastest without
// scheduling a promise per file. One readdirSync per directory rather than readdirSync's
// `recursive` option, which costs ~4x the CPU on a cold start (it joins and wraps every entry).
// As that option does, it descends into symbolic links to directories (and silently stops where
// the system refuses one: a loop, a dangling link) but lists no symbolic link to a file.
function findYamlFiles(dir: string): string[] {
  const files: string[] = [];
  const dirs = [dir];
  for (let next = dirs.pop(); next !== undefined; next = dirs.pop()) {
    let entries: Dirent[];
    try {
      entries = readdirSync(next, { withFileTypes: true });
    } catch (err) {
      if (next === dir) throw err;
      continue; // below a symbolic link the system refused to follow further
    }
    for (const entry of entries) {
      const path = join(next, entry.name);
      if (entry.isDirectory() || (entry.isSymbolicLink() && isDirectory(path))) dirs.push(path);
      else if (entry.isFile() && YAML_EXTENSIONS.has(extname(entry.name).toLowerCase())) files.push(path);
    }
  }
  return files.sort();
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Reads one YAML file with the same limits and checks (size, binary, UTF-8) as namespace sources. */
export function readSourceFile(file: string): ReadResult {
  const result: ReadResult = { sources: [], diagnostics: [] };
  addFile(result, file);
  return result;
}

function addFile(result: ReadResult, file: string): void {
  try {
    const info = statSync(file);
    if (info.size > MAX_FILE_BYTES) {
      result.diagnostics.push(tooLarge(file, info.size));
      return;
    }
    addBytes(result, file, readFileSync(file));
  } catch (err) {
    result.diagnostics.push(fileProblem(file, err));
  }
}

function addBytes(result: ReadResult, file: string, bytes: Buffer): void {
  if (bytes.length > MAX_FILE_BYTES) {
    result.diagnostics.push(tooLarge(file, bytes.length));
    return;
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    const { line, column } = positionOfByte(bytes, nul);
    result.diagnostics.push({
      ...problem(
        file,
        'E_NOT_TEXT',
        'file is binary (contains a NUL byte), not YAML',
        'pass a YAML namespace file',
      ),
      line,
      column,
    });
    return;
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const { line, column } = positionOfByte(bytes, bad);
    result.diagnostics.push({
      ...problem(file, 'E_ENCODING', 'file is not valid UTF-8', 'save the file as UTF-8'),
      line,
      column,
    });
    return;
  }
  result.sources.push({ file, text: text.replace(/^\uFEFF/, '') });
}

function problem(file: string, rule: string, message: string, hint: string): Diagnostic {
  return { severity: 'error', rule, message, file, line: 0, column: 0, path: '', hint };
}

function tooLarge(file: string, size: number): Diagnostic {
  return problem(
    file,
    'E_FILE_TOO_LARGE',
    `file is ${size} bytes; namespace files are limited to ${MAX_FILE_BYTES} bytes`,
    'split it into one file per namespace',
  );
}

function fileProblem(file: string, err: unknown): Diagnostic {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return problem(file, 'E_FILE_NOT_FOUND', 'no such file or directory', 'check the path');
  if (code === 'EACCES')
    return problem(file, 'E_FILE_UNREADABLE', 'permission denied', 'check the file permissions');
  return problem(file, 'E_FILE_UNREADABLE', `cannot read: ${code ?? String(err)}`, 'check the path');
}

function positionOfByte(bytes: Buffer, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Offset of the first byte that does not start a valid UTF-8 sequence (overlongs aside). */
function firstInvalidUtf8(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] as number;
    const length =
      lead < 0x80
        ? 1
        : lead >= 0xc2 && lead < 0xe0
          ? 2
          : lead >= 0xe0 && lead < 0xf0
            ? 3
            : lead >= 0xf0 && lead < 0xf5
              ? 4
              : 0;
    if (length === 0 || i + length > bytes.length) return i;
    for (let k = 1; k < length; k++) if (((bytes[i + k] as number) & 0xc0) !== 0x80) return i;
    i += length;
  }
  return i;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buf.length;
    chunks.push(buf);
    if (size > MAX_FILE_BYTES) break;
  }
  return Buffer.concat(chunks);
}
