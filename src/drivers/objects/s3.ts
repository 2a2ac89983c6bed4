/**
 * S3-compatible objects through the AWS SDK v3 S3 client (any S3-compatible server: AWS S3,
 * SeaweedFS, Ceph RGW, ...). Endpoint: `http(s)://host[:port]/<bucket>[?region=<region>]` (path-style
 * requests to that server) or `s3://<bucket>[?region=<region>]` (AWS itself). Credentials: the slot's
 * `username:password` as access key id and secret; without them the SDK's default chain (AWS_*
 * variables, instance roles). Objects live under `<namespace>/` in the bucket; the bucket is created
 * at connect when it does not exist.
 *
 * The driver computes each object's SHA-256 and keeps it, with the expiry, in the object's
 * metadata (`x-amz-meta-prism-sha256`, `x-amz-meta-prism-expires-at-ms`): an expired object reads as
 * missing, and `sweepObjects` deletes it (a bucket lifecycle rule can do the same in whole days).
 */
import { Readable } from 'node:stream';
import { Upload } from '@aws-sdk/lib-storage';
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { PrismError } from '../../errors.js';
import {
  BackendDownError,
  type Capability,
  type Driver,
  type DriverOptions,
  type ObjectInfo,
  type ObjectRange,
  type ObjectReader,
  type ObjectStore,
  type PutObjectOptions,
} from '../interfaces.js';
import { checkNamespace } from '../kv-common.js';
import { collectOld } from '../../gc.js';
import {
  checkObjectKey,
  checksumFor,
  clampRange,
  expired,
  expiryOf,
  hashingTap,
  readAll,
  sizeMismatch,
} from './common.js';
import { directGet, DirectGetConnections } from './s3-direct-get.js';
import {
  directCall,
  directPut,
  directAgent,
  S3Refusal,
  type DirectAnswer,
  type DirectTarget,
} from './s3-direct-http.js';
import type { Agent } from 'node:http';

const META_SHA256 = 'prism-sha256';
const META_EXPIRES = 'prism-expires-at-ms';
/**
 * A streamed put's part size (S3's minimum) and parts in flight: with the part being filled, the
 * driver holds at most (STREAM_PARTS_IN_FLIGHT + 1) × STREAM_PART_BYTES of a streamed object.
 */
const STREAM_PART_BYTES = 5 * 1024 * 1024;
const STREAM_PARTS_IN_FLIGHT = 2;
/** Bytes of a multipart upload's body between two major GCs: a few part buffers. */
const COLLECT_OLD_EVERY_BYTES = 16 * 1024 * 1024;
/** S3's largest single PutObject: a longer announced body goes as a multipart upload. */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** The longest a request's connection may stay silent. */
const REQUEST_TIMEOUT_MS = 120_000;
/** Multipart uploads older than this are abandoned (the put that began them failed or crashed). */
const ABANDONED_UPLOAD_MS = 24 * 60 * 60 * 1000;

export interface S3Location {
  /** Absent for AWS itself (`s3://`). */
  endpoint?: string;
  bucket: string;
  region: string;
}

/** Parses an `objects` slot endpoint for the s3 backend. */
export function parseS3Endpoint(endpoint: string): S3Location {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw badEndpoint(endpoint);
  }
  const region = url.searchParams.get('region') ?? 'us-east-1';
  if (url.username !== '' || url.password !== '') {
    throw new PrismError('E_INVALID_ARGUMENT', 's3 endpoint must not carry credentials', {
      hint: 'give the access key and secret as the slot credentials (vault:// or ${ENV} holding key:secret)',
    });
  }
  if (url.protocol === 's3:') {
    if (url.hostname === '') throw badEndpoint(endpoint);
    return { bucket: url.hostname, region };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badEndpoint(endpoint);
  const bucket = url.pathname.replace(/^\/+|\/+$/g, '');
  if (bucket === '' || bucket.includes('/')) throw badEndpoint(endpoint);
  return { endpoint: `${url.protocol}//${url.host}`, bucket, region };
}

function badEndpoint(endpoint: string): PrismError {
  return new PrismError(
    'E_INVALID_ARGUMENT',
    `s3 endpoint ${JSON.stringify(endpoint)} is not http(s)://host[:port]/<bucket> or s3://<bucket>`,
    { hint: 'for example http://127.0.0.1:8333/prism-objects?region=us-east-1' },
  );
}

export type S3Objects = Driver & ObjectStore;

const ignore = () => undefined;
const QUIET = { trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };

export interface S3ObjectsOptions extends Pick<DriverOptions, 'endpoint' | 'namespace' | 'credentials'> {
  now?: () => number;
  /** Milliseconds to wait for a connection; default 3000. */
  connectTimeoutMs?: number;
}

export function createS3Objects(options: S3ObjectsOptions): S3Objects {
  return new S3ObjectsDriver(options);
}

/** HTTP status of an SDK error or a direct request's refusal, when the server answered. */
function statusOf(err: unknown): number | undefined {
  if (err instanceof S3Refusal) return err.status;
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket' || statusOf(err) === 404;
}

class S3ObjectsDriver implements S3Objects {
  readonly backend = 's3';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['objects']);
  private readonly location: S3Location;
  private readonly prefix: string;
  private readonly now: () => number;
  private client: S3Client | undefined;
  private signer: SignatureV4 | undefined;
  /** Kept-alive connections of the direct puts, heads and deletes (s3-direct-http.ts) and gets (s3-direct-get.ts). */
  private httpAgent: Agent | undefined;
  private readonly getConnections = new DirectGetConnections();
  /**
   * The endpoint GetObject reads from and PutObject writes to directly (s3-direct-get.ts,
   * s3-direct-http.ts): a plain `http:` one only.
   */
  private readonly directEndpoint: URL | undefined;

  constructor(private readonly options: S3ObjectsOptions) {
    this.location = parseS3Endpoint(options.endpoint);
    this.prefix = `${checkNamespace(options.namespace)}/`;
    this.now = options.now ?? Date.now;
    const endpoint = this.location.endpoint;
    this.directEndpoint = endpoint?.startsWith('http:') === true ? new URL(endpoint) : undefined;
  }

  private get s3(): S3Client {
    if (this.client === undefined) {
      const timeout = this.options.connectTimeoutMs ?? 3000;
      const config: S3ClientConfig = {
        region: this.location.region,
        forcePathStyle: true,
        maxAttempts: 2,
        // The SDK warns on the console when a streamed put fails (it is not retried); the
        // failure reaches the caller as an error instead.
        logger: QUIET,
        // Integrity is the driver's own SHA-256; the SDK's extra CRC trailers are not needed.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: { connectionTimeout: timeout, requestTimeout: REQUEST_TIMEOUT_MS },
        ...(this.location.endpoint !== undefined ? { endpoint: this.location.endpoint } : {}),
        ...(this.options.credentials !== undefined
          ? {
              credentials: {
                accessKeyId: this.options.credentials.username,
                secretAccessKey: this.options.credentials.password,
              },
            }
          : {}),
      };
      this.client = new S3Client(config);
    }
    return this.client;
  }

  /** Runs one S3 call; a store that does not answer (or answers 5xx) becomes BackendDownError. */
  private async call<T>(what: string, fn: (s3: S3Client) => Promise<T>): Promise<T> {
    try {
      return await fn(this.s3);
    } catch (err) {
      throw this.failure(what, err);
    }
  }

  /** A failed S3 request as the driver reports it; a missing object's error stays as it is. */
  private failure(what: string, err: unknown): unknown {
    if (isNotFound(err)) return err;
    const status = statusOf(err);
    if (status === undefined || status >= 500) return new BackendDownError('s3', what, err);
    const name = (err as { name?: string }).name ?? 'Error';
    return new PrismError(
      status === 401 || status === 403 ? 'E_PERMISSION_DENIED' : 'E_INVALID_ARGUMENT',
      `s3 refused ${what} in bucket ${this.location.bucket}: ${name} (HTTP ${status})`,
      { cause: err },
    );
  }

  async connect(): Promise<void> {
    const Bucket = this.location.bucket;
    try {
      await this.call(`HeadBucket ${Bucket}`, (s3) => s3.send(new HeadBucketCommand({ Bucket })));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.call(`CreateBucket ${Bucket}`, (s3) => s3.send(new CreateBucketCommand({ Bucket }))).catch(
        (e: unknown) => {
          // Another driver created it in between.
          if ((e as { cause?: { name?: string } }).cause?.name === 'BucketAlreadyOwnedByYou') return;
          throw e;
        },
      );
    }
  }

  async health(): Promise<void> {
    const Bucket = this.location.bucket;
    await this.call(`HeadBucket ${Bucket}`, (s3) => s3.send(new HeadBucketCommand({ Bucket })));
  }

  async close(): Promise<void> {
    this.client?.destroy();
    this.client = undefined;
    this.httpAgent?.destroy();
    this.httpAgent = undefined;
    this.getConnections.destroy();
  }

  async putObject(key: string, body: Uint8Array, options?: PutObjectOptions): Promise<ObjectInfo> {
    checkObjectKey(key);
    const sha256 = checksumFor(key, body, options);
    const expiresAtMs = expiryOf(options, this.now());
    const info = {
      key,
      size: body.byteLength,
      sha256,
      ...(expiresAtMs !== undefined ? { expiresAtMs } : {}),
    };
    // Directly first; what fails there other than a refusal is asked again through the SDK, which
    // retries.
    const direct = await this.putDirect(key, body, body.byteLength, sha256, expiresAtMs)?.then(
      () => true,
      (err: unknown) => {
        const status = statusOf(err);
        if (status !== undefined && status < 500) throw this.failure(`PutObject ${key}`, err);
        return false;
      },
    );
    if (direct === true) return info;
    await this.call(`PutObject ${key}`, (s3) =>
      s3.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: this.prefix + key,
          Body: body,
          ContentLength: body.byteLength,
          ContentType: 'application/octet-stream',
          Metadata: {
            [META_SHA256]: sha256,
            ...(expiresAtMs !== undefined ? { [META_EXPIRES]: String(expiresAtMs) } : {}),
          },
        }),
      ),
    );
    return info;
  }

  /**
   * A PutObject straight to a plain-`http:` endpoint (s3-direct-http.ts); `undefined` for any other.
   * `sha256` (when known) goes into the object's metadata, beside the expiry.
   */
  private putDirect(
    key: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    size: number,
    sha256: string | undefined,
    expiresAtMs: number | undefined,
  ): Promise<void> | undefined {
    const target = this.directTarget(key);
    if (target === undefined) return undefined;
    return directPut({
      ...target,
      headers: {
        'content-type': 'application/octet-stream',
        ...(sha256 !== undefined ? { [`x-amz-meta-${META_SHA256}`]: sha256 } : {}),
        ...(expiresAtMs !== undefined ? { [`x-amz-meta-${META_EXPIRES}`]: String(expiresAtMs) } : {}),
      },
      size,
      body,
    });
  }

  /**
   * A HeadObject or DeleteObject straight to a plain-`http:` endpoint: the answer when it is a plain
   * one (`plain(status)`), else (and without an answer, or from any other endpoint) `undefined`, to
   * be asked again through the SDK.
   */
  private async callDirect(
    method: 'HEAD' | 'DELETE',
    key: string,
    plain: (status: number) => boolean,
  ): Promise<DirectAnswer | undefined> {
    const target = this.directTarget(key);
    if (target === undefined) return undefined;
    const answer = await directCall({ ...target, method }).catch(() => undefined);
    return answer !== undefined && plain(answer.status) ? answer : undefined;
  }

  /** Where a direct request for `key` goes, on the shared connections; `undefined` off plain `http:`. */
  private directTarget(key: string): DirectTarget | undefined {
    const endpoint = this.directEndpoint;
    if (endpoint === undefined) return undefined;
    this.httpAgent ??= directAgent();
    return {
      endpoint,
      path: this.objectPath(key),
      signer: this.directSigner,
      agent: this.httpAgent,
      connectTimeoutMs: this.options.connectTimeoutMs ?? 3000,
      idleTimeoutMs: REQUEST_TIMEOUT_MS,
    };
  }

  /** SigV4 for the direct requests, with the SDK client's credentials and hash. */
  private get directSigner(): SignatureV4 {
    const config = this.s3.config;
    this.signer ??= new SignatureV4({
      service: 's3',
      region: this.location.region,
      credentials: config.credentials,
      sha256: config.sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    return this.signer;
  }

  /** `/<bucket>/<namespace>/<key>`, each segment URI-encoded, as a direct request's path. */
  private objectPath(key: string): string {
    const objectKey = `${this.prefix}${key}`.split('/').map(encodeURIComponent).join('/');
    return `/${encodeURIComponent(this.location.bucket)}/${objectKey}`;
  }

  /**
   * A multipart upload (@aws-sdk/lib-storage's Upload) reading the body one chunk at a time; a
   * body that ends within the first part is one PutObject. S3 takes metadata when an upload begins, so the object's
   * `prism-sha256` is only written when `options.sha256` announced it (else `statObject` reports
   * `sha256: ''` for it). A failed put aborts its upload; one that crashed is aborted by
   * `sweepObjects` a day later.
   */
  async putObjectStream(
    key: string,
    body: AsyncIterable<Uint8Array>,
    options?: PutObjectOptions,
  ): Promise<ObjectInfo> {
    checkObjectKey(key);
    const announced = options?.size;
    // A body of announced length goes as it arrives, in one PutObject. One of at most a part does
    // only when its hash is announced too (S3 takes the metadata, which keeps the hash, before the
    // body); else it is gathered into one PutObject, hashed on the way.
    const streamed =
      announced !== undefined &&
      announced <= MAX_PUT_BYTES &&
      (announced > STREAM_PART_BYTES || (announced > 0 && options?.sha256 !== undefined));
    if (streamed) return this.putAnnounced(key, body, announced, options);
    // A body of at most one part is one PutObject: a multipart upload would add two requests.
    const source = body[Symbol.asyncIterator]();
    const head: Uint8Array[] = [];
    let headBytes = 0;
    let ended = false;
    while (headBytes < STREAM_PART_BYTES) {
      const next = await source.next();
      if (next.done === true) {
        ended = true;
        break;
      }
      head.push(next.value);
      headBytes += next.value.byteLength;
    }
    if (ended) {
      if (announced !== undefined && headBytes !== announced)
        throw sizeMismatch(key, announced, String(headBytes));
      return this.putObject(key, Buffer.concat(head, headBytes), options);
    }
    const rest = async function* (): AsyncGenerator<Uint8Array> {
      yield* head.splice(0);
      for (let next = await source.next(); next.done !== true; next = await source.next()) yield next.value;
    };
    const expiresAtMs = expiryOf(options, this.now());
    const expected = options?.sha256?.toLowerCase();
    const tap = hashingTap(key, rest(), options);
    let bodyFailure: { err: unknown } | undefined;
    // Part buffers live for a part's whole request, long enough to reach the old generation,
    // where only a major GC frees them: one runs alongside every few parts' worth (src/gc.ts).
    let sinceCollect = 0;
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of tap.chunks) {
          sinceCollect += chunk.byteLength;
          if (sinceCollect >= COLLECT_OLD_EVERY_BYTES) {
            sinceCollect = 0;
            collectOld();
          }
          yield chunk;
        }
      } catch (err) {
        bodyFailure = { err };
        throw err;
      }
    };
    const upload = new Upload({
      client: this.s3,
      partSize: STREAM_PART_BYTES,
      queueSize: STREAM_PARTS_IN_FLIGHT,
      leavePartsOnError: false,
      params: {
        Bucket: this.location.bucket,
        Key: this.prefix + key,
        // One chunk read ahead at most: the caller's source is what holds the rest back.
        Body: Readable.from(chunks(), { highWaterMark: 1 }),
        ContentType: 'application/octet-stream',
        Metadata: {
          ...(expected !== undefined ? { [META_SHA256]: expected } : {}),
          ...(expiresAtMs !== undefined ? { [META_EXPIRES]: String(expiresAtMs) } : {}),
        },
      },
    });
    try {
      await this.call(`Upload ${key}`, () => upload.done());
    } catch (err) {
      if (bodyFailure !== undefined) throw bodyFailure.err;
      throw err;
    }
    const { size, sha256 } = tap.result();
    return { key, size, sha256, ...(expiresAtMs !== undefined ? { expiresAtMs } : {}) };
  }

  /**
   * A body of announced length as one PutObject, written as it arrives: no part buffers, and the
   * payload is not hashed a second time for the request's signature (a streamed body is sent as
   * UNSIGNED-PAYLOAD; the driver's own SHA-256 is the integrity check). The tap holds the last
   * chunk back until size and hash are checked, so a mismatch aborts the request before S3 has
   * the announced length; an aborted PutObject stores nothing (and is not retried).
   */
  private async putAnnounced(
    key: string,
    body: AsyncIterable<Uint8Array>,
    size: number,
    options: PutObjectOptions | undefined,
  ): Promise<ObjectInfo> {
    const expiresAtMs = expiryOf(options, this.now());
    const expected = options?.sha256?.toLowerCase();
    const tap = hashingTap(key, body, options);
    const result = () => {
      const { sha256 } = tap.result();
      return { key, size, sha256, ...(expiresAtMs !== undefined ? { expiresAtMs } : {}) };
    };
    let bodyFailure: { err: unknown } | undefined;
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      try {
        yield* tap.chunks;
      } catch (err) {
        bodyFailure = { err };
        throw err;
      }
    };
    // A streamed body cannot be sent twice: a direct put that fails is not asked again.
    const direct = this.putDirect(key, chunks(), size, expected, expiresAtMs);
    if (direct !== undefined) {
      await direct.catch((err: unknown) => {
        throw bodyFailure !== undefined ? bodyFailure.err : this.failure(`PutObject ${key}`, err);
      });
      return result();
    }
    const stream = Readable.from(tap.chunks, { highWaterMark: 1 });
    const abort = new AbortController();
    stream.on('error', (err) => {
      bodyFailure = { err };
      abort.abort(err);
    });
    try {
      await this.call(`PutObject ${key}`, (s3) =>
        s3.send(
          new PutObjectCommand({
            Bucket: this.location.bucket,
            Key: this.prefix + key,
            Body: stream,
            ContentLength: size,
            ContentType: 'application/octet-stream',
            Metadata: {
              ...(expected !== undefined ? { [META_SHA256]: expected } : {}),
              ...(expiresAtMs !== undefined ? { [META_EXPIRES]: String(expiresAtMs) } : {}),
            },
          }),
          { abortSignal: abort.signal },
        ),
      );
    } catch (err) {
      if (bodyFailure !== undefined) throw bodyFailure.err;
      throw err;
    } finally {
      stream.destroy();
    }
    return result();
  }

  /** CopyObject (server-side), then DeleteObject of `from`; the copy gets `from`'s metadata. */
  async renameObject(from: string, to: string): Promise<boolean> {
    checkObjectKey(to);
    const info = await this.statObject(from);
    if (info === undefined) return false;
    const Bucket = this.location.bucket;
    await this.call(`CopyObject ${from}`, (s3) =>
      s3.send(
        new CopyObjectCommand({
          Bucket,
          Key: this.prefix + to,
          CopySource: encodeURI(`${Bucket}/${this.prefix}${from}`),
          MetadataDirective: 'REPLACE',
          ContentType: 'application/octet-stream',
          Metadata: {
            ...(info.sha256 !== '' ? { [META_SHA256]: info.sha256 } : {}),
            ...(info.expiresAtMs !== undefined ? { [META_EXPIRES]: String(info.expiresAtMs) } : {}),
          },
        }),
      ),
    );
    await this.call(`DeleteObject ${from}`, (s3) =>
      s3.send(new DeleteObjectCommand({ Bucket, Key: this.prefix + from })),
    );
    return true;
  }

  async getObject(key: string, range?: ObjectRange): Promise<Uint8Array | undefined> {
    checkObjectKey(key);
    if (range !== undefined) {
      // The size is needed to clamp the range: S3 answers 416 for a range past the end.
      const info = await this.statObject(key);
      if (info === undefined) return undefined;
      const [start, end] = clampRange(range, info.size);
      if (end === start) return new Uint8Array(0);
      return this.fetch(key, `bytes=${start}-${end - 1}`);
    }
    return this.fetch(key);
  }

  /** The object's bytes (or a range of them) in one buffer of their length, filled as they arrive. */
  private async fetch(key: string, range?: string): Promise<Uint8Array | undefined> {
    const reader = await this.read(key, range);
    if (reader === undefined) return undefined;
    return readAll(reader, (received) => {
      const more =
        received > reader.size ? `more than the ${reader.size}` : `${received} of the ${reader.size}`;
      return new BackendDownError('s3', `GetObject ${key}: ${more} bytes announced`);
    });
  }

  async readObject(key: string): Promise<ObjectReader | undefined> {
    checkObjectKey(key);
    return this.read(key);
  }

  /**
   * GetObject, its body read as it arrives (the SDK's own `transformToByteArray` gathers the
   * chunks and copies them once more). A body that breaks off is the store going away. From an
   * `http:` endpoint the socket reads it straight into the caller's buffer (s3-direct-get.ts);
   * an answer that is not a plain 200 or 206, or no answer, is asked again through the SDK.
   */
  private async read(key: string, range?: string): Promise<ObjectReader | undefined> {
    const what = `GetObject ${key}`;
    const direct = await this.readDirect(key, range);
    if (direct !== 'ask-sdk') return direct;
    try {
      return await this.call(what, async (s3) => {
        const res = await s3.send(
          new GetObjectCommand({
            Bucket: this.location.bucket,
            Key: this.prefix + key,
            ...(range !== undefined ? { Range: range } : {}),
          }),
        );
        // In Node.js the body is the HTTP response (an http.IncomingMessage).
        const body = res.Body as (Readable & { destroy(): void }) | undefined;
        const expiresAt = res.Metadata?.[META_EXPIRES];
        if (expiresAt !== undefined && expired(Number(expiresAt), this.now())) {
          body?.destroy();
          return undefined;
        }
        return { size: res.ContentLength ?? 0, chunks: bodyChunks(what, body) };
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async readDirect(key: string, range?: string): Promise<ObjectReader | undefined | 'ask-sdk'> {
    const endpoint = this.directEndpoint;
    if (endpoint === undefined) return 'ask-sdk';
    const got = await directGet({
      endpoint,
      path: this.objectPath(key),
      ...(range !== undefined ? { range } : {}),
      signer: this.directSigner,
      connections: this.getConnections,
      connectTimeoutMs: this.options.connectTimeoutMs ?? 3000,
      idleTimeoutMs: REQUEST_TIMEOUT_MS,
    }).catch(() => undefined);
    if (got === undefined) return 'ask-sdk';
    const expiresAt = got.headers.get(`x-amz-meta-${META_EXPIRES}`);
    if (expiresAt !== undefined && expired(Number(expiresAt), this.now())) {
      got.release();
      return undefined;
    }
    const what = `GetObject ${key}`;
    const readInto = (target: Uint8Array, onBytes?: (view: Uint8Array) => void) =>
      got.readInto(target, onBytes).catch((err: unknown) => {
        throw new BackendDownError('s3', what, err);
      });
    return { size: got.size, readInto, chunks: bodyViews(got.size, readInto, () => got.release()) };
  }

  async statObject(key: string): Promise<ObjectInfo | undefined> {
    checkObjectKey(key);
    const direct = await this.callDirect('HEAD', key, (status) => status === 200 || status === 404);
    if (direct !== undefined) {
      if (direct.status === 404) return undefined;
      const meta = (name: string) => {
        const value = direct.headers[`x-amz-meta-${name}`];
        return typeof value === 'string' ? value : undefined;
      };
      return this.infoOf(
        key,
        Number(direct.headers['content-length'] ?? 0),
        meta(META_SHA256),
        meta(META_EXPIRES),
      );
    }
    try {
      const res = await this.call(`HeadObject ${key}`, (s3) =>
        s3.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.prefix + key })),
      );
      return this.infoOf(
        key,
        res.ContentLength ?? 0,
        res.Metadata?.[META_SHA256],
        res.Metadata?.[META_EXPIRES],
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** An object's info from its size and metadata; `undefined` once it expired. */
  private infoOf(
    key: string,
    size: number,
    sha256: string | undefined,
    expiresAt: string | undefined,
  ): ObjectInfo | undefined {
    const expiresAtMs = expiresAt !== undefined ? Number(expiresAt) : undefined;
    if (expired(expiresAtMs, this.now())) return undefined;
    return { key, size, sha256: sha256 ?? '', ...(expiresAtMs !== undefined ? { expiresAtMs } : {}) };
  }

  async deleteObject(key: string): Promise<boolean> {
    const existed = (await this.statObject(key)) !== undefined;
    // S3 answers 204 whether or not there was an object.
    if ((await this.callDirect('DELETE', key, (status) => status === 204 || status === 200)) !== undefined)
      return existed;
    await this.call(`DeleteObject ${key}`, (s3) =>
      s3.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.prefix + key })),
    );
    return existed;
  }

  async sweepObjects(prefix: string): Promise<number> {
    let removed = 0;
    let token: string | undefined;
    const now = this.now();
    do {
      const page = await this.call('ListObjectsV2', (s3) =>
        s3.send(
          new ListObjectsV2Command({
            Bucket: this.location.bucket,
            Prefix: this.prefix + prefix,
            ...(token !== undefined ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        const Key = object.Key;
        const head = await this.call(`HeadObject ${Key}`, (s3) =>
          s3.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key })),
        ).catch((err: unknown) => {
          if (isNotFound(err)) return undefined;
          throw err;
        });
        const expiresAt = head?.Metadata?.[META_EXPIRES];
        if (expiresAt !== undefined && expired(Number(expiresAt), now)) {
          await this.call(`DeleteObject ${Key}`, (s3) =>
            s3.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key })),
          );
          removed++;
        }
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return removed + (await this.abortAbandonedUploads(prefix, now));
  }

  /** Aborts the multipart uploads under `prefix` begun more than ABANDONED_UPLOAD_MS ago. */
  private async abortAbandonedUploads(prefix: string, now: number): Promise<number> {
    const Bucket = this.location.bucket;
    const listed = await this.call('ListMultipartUploads', (s3) =>
      s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: this.prefix + prefix })),
    );
    let aborted = 0;
    for (const upload of listed.Uploads ?? []) {
      const began = upload.Initiated?.getTime();
      if (upload.Key === undefined || upload.UploadId === undefined || began === undefined) continue;
      if (now - began < ABANDONED_UPLOAD_MS) continue;
      await this.call(`AbortMultipartUpload ${upload.Key}`, (s3) =>
        s3.send(new AbortMultipartUploadCommand({ Bucket, Key: upload.Key, UploadId: upload.UploadId })),
      );
      aborted++;
    }
    return aborted;
  }
}

/** A GetObject body's chunks; a failure midway (a reset, a timeout) is BackendDownError. */
async function* bodyChunks(what: string, body: Readable | undefined): AsyncGenerator<Uint8Array> {
  if (body === undefined) return;
  try {
    for await (const chunk of body) yield chunk as Uint8Array;
  } catch (err) {
    throw new BackendDownError('s3', what, err);
  } finally {
    body.destroy();
  }
}

/**
 * A direct read's body as chunks: read into one buffer of the object's size, each view yielded
 * once its bytes are in place (stopping early releases the connection).
 */
async function* bodyViews(
  size: number,
  readInto: (target: Uint8Array, onBytes: (view: Uint8Array) => void) => Promise<void>,
  release: () => void,
): AsyncGenerator<Uint8Array> {
  const target = Buffer.allocUnsafe(size);
  const landed: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let outcome: { failed: false } | { failed: true; err: unknown } | undefined;
  readInto(target, (view) => {
    landed.push(view);
    wake?.();
  })
    .then(
      () => (outcome = { failed: false }),
      (err: unknown) => (outcome = { failed: true, err }),
    )
    .finally(() => wake?.());
  try {
    for (;;) {
      const view = landed.shift();
      if (view !== undefined) {
        yield view;
        continue;
      }
      if (outcome !== undefined) {
        if (outcome.failed) throw outcome.err;
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    release();
  }
}
