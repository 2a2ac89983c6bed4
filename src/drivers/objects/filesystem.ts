/**
 * filesystem objects: each object is a file `<root>/<namespace>/data/<key>` with its checksum and
 * expiry in `<root>/<namespace>/meta/<key>.json` (directories 0700, files 0600). A put writes both
 * to temporary files and renames them into place, so a reader sees the old object or the new one.
 * `<root>` is the endpoint's path (`file:/abs/dir`), or `<dataDir>/objects` for a relative one.
 * Removing an object also removes the directories its key left empty (keys like the claim
 * check's `claims/<sha256>/<id>` would otherwise leave one directory per message behind).
 */
import { randomBytes } from 'node:crypto';
import {
  mkdir,
  open,
  readFile,
  readdir,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { PrismError } from '../../errors.js';
import type {
  Capability,
  Driver,
  DriverOptions,
  ObjectInfo,
  ObjectRange,
  ObjectReader,
  ObjectStore,
  PutObjectOptions,
} from '../interfaces.js';
import { checkNamespace } from '../kv-common.js';
import { checkObjectKey, checksumFor, clampRange, expired, expiryOf, hashingTap } from './common.js';

/** Bytes per chunk of readObject. */
const READ_CHUNK_BYTES = 1024 * 1024;

interface Meta {
  size: number;
  sha256: string;
  expiresAtMs?: number;
}

export type FilesystemObjects = Driver & ObjectStore;

export function createFilesystemObjects(
  options: Pick<DriverOptions, 'endpoint' | 'namespace' | 'dataDir'> & { now?: () => number },
): FilesystemObjects {
  return new FilesystemObjectsDriver(
    rootOf(options),
    checkNamespace(options.namespace),
    options.now ?? Date.now,
  );
}

function rootOf(options: Pick<DriverOptions, 'endpoint' | 'dataDir'>): string {
  const path = options.endpoint.startsWith('file:')
    ? options.endpoint.slice('file:'.length)
    : options.endpoint;
  if (isAbsolute(path)) return path;
  if (options.dataDir === undefined) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `filesystem objects: endpoint ${JSON.stringify(options.endpoint)} is relative and no data directory is configured`,
      { hint: 'use an absolute endpoint such as file:/var/lib/prism/objects' },
    );
  }
  return join(options.dataDir, 'objects');
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

class FilesystemObjectsDriver implements FilesystemObjects {
  readonly backend = 'filesystem';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['objects']);
  private readonly dataRoot: string;
  private readonly metaRoot: string;

  constructor(
    private readonly root: string,
    namespace: string,
    private readonly now: () => number,
  ) {
    this.dataRoot = join(root, namespace, 'data');
    this.metaRoot = join(root, namespace, 'meta');
  }

  private dataPath(key: string): string {
    return join(this.dataRoot, ...checkObjectKey(key).split('/'));
  }

  private metaPath(key: string): string {
    return `${join(this.metaRoot, ...checkObjectKey(key).split('/'))}.json`;
  }

  async connect(): Promise<void> {
    await mkdir(this.dataRoot, { recursive: true, mode: 0o700 });
    await mkdir(this.metaRoot, { recursive: true, mode: 0o700 });
  }

  async health(): Promise<void> {
    await stat(this.dataRoot);
  }

  async close(): Promise<void> {}

  async putObject(key: string, body: Uint8Array, options?: PutObjectOptions): Promise<ObjectInfo> {
    const data = this.dataPath(key);
    const sha256 = checksumFor(key, body, options);
    const expiresAtMs = expiryOf(options, this.now());
    const meta: Meta = { size: body.byteLength, sha256, ...(expiresAtMs ? { expiresAtMs } : {}) };
    await writeAtomically(data, body);
    await writeAtomically(this.metaPath(key), new TextEncoder().encode(JSON.stringify(meta)));
    return { key, ...meta };
  }

  /** Writes the chunks to a temporary file one after another, then renames it into place. */
  async putObjectStream(
    key: string,
    body: AsyncIterable<Uint8Array>,
    options?: PutObjectOptions,
  ): Promise<ObjectInfo> {
    const data = this.dataPath(key);
    const expiresAtMs = expiryOf(options, this.now());
    const tap = hashingTap(key, body, options);
    await writeAtomically(data, async (file) => {
      for await (const chunk of tap.chunks) await file.write(chunk);
    });
    const { size, sha256 } = tap.result();
    const meta: Meta = { size, sha256, ...(expiresAtMs ? { expiresAtMs } : {}) };
    await writeAtomically(this.metaPath(key), new TextEncoder().encode(JSON.stringify(meta)));
    return { key, ...meta };
  }

  async renameObject(from: string, to: string): Promise<boolean> {
    const meta = await this.liveMeta(from);
    if (meta === undefined) return false;
    const [data, metaFile] = [this.dataPath(to), this.metaPath(to)];
    await mkdir(dirname(data), { recursive: true, mode: 0o700 });
    await mkdir(dirname(metaFile), { recursive: true, mode: 0o700 });
    await rename(this.dataPath(from), data);
    await rename(this.metaPath(from), metaFile);
    await pruneEmpty(dirname(this.dataPath(from)), this.dataRoot);
    await pruneEmpty(dirname(this.metaPath(from)), this.metaRoot);
    return true;
  }

  async getObject(key: string, range?: ObjectRange): Promise<Uint8Array | undefined> {
    const meta = await this.liveMeta(key);
    if (meta === undefined) return undefined;
    let file;
    try {
      file = await open(this.dataPath(key), 'r');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    try {
      const size = (await file.stat()).size;
      const [start, end] = clampRange(range, size);
      const out = new Uint8Array(end - start);
      let read = 0;
      while (read < out.byteLength) {
        const { bytesRead } = await file.read(out, read, out.byteLength - read, start + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      return read === out.byteLength ? out : out.subarray(0, read);
    } finally {
      await file.close();
    }
  }

  async readObject(key: string): Promise<ObjectReader | undefined> {
    const meta = await this.liveMeta(key);
    if (meta === undefined) return undefined;
    let file: FileHandle;
    try {
      file = await open(this.dataPath(key), 'r');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    let size: number;
    try {
      size = (await file.stat()).size;
    } catch (err) {
      await file.close();
      throw err;
    }
    return { size, chunks: readChunks(file) };
  }

  async statObject(key: string): Promise<ObjectInfo | undefined> {
    const meta = await this.liveMeta(key);
    return meta === undefined ? undefined : { key, ...meta };
  }

  async deleteObject(key: string): Promise<boolean> {
    const existed = (await this.liveMeta(key)) !== undefined;
    await this.remove(key);
    return existed;
  }

  /** Removes the object's files, then the directories that leaves empty (up to the roots). */
  private async remove(key: string): Promise<void> {
    const data = this.dataPath(key);
    const meta = this.metaPath(key);
    await rm(data, { force: true });
    await rm(meta, { force: true });
    await pruneEmpty(dirname(data), this.dataRoot);
    await pruneEmpty(dirname(meta), this.metaRoot);
  }

  async sweepObjects(prefix: string): Promise<number> {
    let removed = 0;
    const now = this.now();
    for await (const file of walk(this.metaRoot)) {
      const key = relative(this.metaRoot, file)
        .split(sep)
        .join('/')
        .replace(/\.json$/, '');
      if (!key.startsWith(prefix)) continue;
      const meta = await this.readMeta(key);
      if (meta !== undefined && expired(meta.expiresAtMs, now)) {
        await this.remove(key);
        removed++;
      }
    }
    return removed;
  }

  private async readMeta(key: string): Promise<Meta | undefined> {
    try {
      return JSON.parse(await readFile(this.metaPath(key), 'utf8')) as Meta;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** The metadata of an object that exists and has not expired (an expired one is removed). */
  private async liveMeta(key: string): Promise<Meta | undefined> {
    const meta = await this.readMeta(key);
    if (meta === undefined) return undefined;
    if (expired(meta.expiresAtMs, this.now())) {
      await this.remove(key);
      return undefined;
    }
    return meta;
  }

  toString(): string {
    return `filesystem objects at ${this.root}`;
  }
}

/** Writes `bytes` (or what `write` writes to the file) to a temporary file, then renames it to `path`. */
async function writeAtomically(
  path: string,
  bytes: Uint8Array | ((file: FileHandle) => Promise<void>),
): Promise<void> {
  // A concurrent remove may prune the directory between mkdir and the write: make it again (a
  // streamed body can be read once only, so it gets no second attempt).
  for (let attempt = 1; ; attempt++) {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      if (bytes instanceof Uint8Array) await writeFile(tmp, bytes, { mode: 0o600, flush: true });
      else {
        const file = await open(tmp, 'w', 0o600);
        try {
          await bytes(file);
          await file.sync();
        } finally {
          await file.close();
        }
      }
      await rename(tmp, path);
      return;
    } catch (err) {
      await rm(tmp, { force: true });
      if (!isMissing(err) || attempt >= 3 || !(bytes instanceof Uint8Array)) throw err;
    }
  }
}

/** A file's bytes in chunks of READ_CHUNK_BYTES; the file is closed at the end or on return. */
async function* readChunks(file: FileHandle): AsyncGenerator<Uint8Array> {
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      const { bytesRead } = await file.read(chunk, 0, READ_CHUNK_BYTES, null);
      if (bytesRead === 0) return;
      yield chunk.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}

/** Removes `dir` and its parents while they are empty, stopping at `root` (never removed). */
async function pruneEmpty(dir: string, root: string): Promise<void> {
  for (
    let current = dir;
    current !== root && current.startsWith(`${root}${sep}`);
    current = dirname(current)
  ) {
    try {
      await rmdir(current);
    } catch {
      return; // not empty (ENOTEMPTY/EEXIST), already gone, or not ours to remove
    }
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.name.endsWith('.json')) yield path;
  }
}
