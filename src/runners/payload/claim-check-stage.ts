/**
 * The claim-check stage (docs/messaging.md, Claim check): a payload larger than `threshold` is
 * stored in the `objects` slot's store and the message travels with a claim to it instead of the
 * bytes; `open` fetches the object, checks it and gives back the original payload and content type,
 * so a subscriber cannot tell a claimed message from an inline one.
 *
 * - Key: `claims/<sha256 of the payload>/<message id>` (`.gz` / `.zst` appended when compressed),
 *   under the namespace's own prefix in the store. One object per message, not per content: the
 *   store has no transactions, so a shared object could be deleted by one message's last ack just
 *   as an equal payload is published again.
 * - Claim: `prism-claim-*` headers (store, key, size, checksum, encoding, original content type),
 *   an empty payload, and `prism-content-type: application/vnd.prism.claim-check`.
 * - Lifetime: the producer lists the topic's consuming groups (from the namespace declaration) in
 *   `prism-claim-groups` and, when there are two or more, stores an empty marker
 *   `<key>.groups/<group>` per group beside the object. When a group's ack has reached the backend
 *   (`settled`), its marker is deleted; the group that finds no other listed marker left (or the
 *   topic's only group) deletes the object. Each delete precedes the
 *   look, so of two concurrent last acks at least one sees none left. Anything not released
 *   (a dead-lettered message, a group that never reads, a crash) expires after `ttl`: expired
 *   objects read as missing and the producer sweeps them (at most once per SWEEP_INTERVAL_MS).
 * - Failures: a store that is down fails the publish (E_BACKEND_DOWN, retried by the caller) or
 *   the delivery (nacked, redelivered later); a missing or corrupt object fails the delivery too, so
 *   after `max_retries` it is dead-lettered with the claim as it travelled.
 */
import { createHash, randomUUID } from 'node:crypto';
import { pipeline, Readable, type Transform } from 'node:stream';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { parseDuration, parseSize } from '../../config/units.js';
import type { Message, ObjectStore } from '../../drivers/interfaces.js';
import { fillFrom, oneChunk, readAll, sha256Hex } from '../../drivers/objects/common.js';
import { PrismError } from '../../errors.js';
import type { ClaimCheckSetting, NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';
import { allocateDeliveryPayload } from '../../transport/large-payload-encoder.js';
import { HEADER } from '../envelope.js';
import { mailboxGroup } from '../mailbox/runner.js';
import type { StageFactory, StageFactoryInput } from './index.js';
import type { PayloadStage, PayloadUpload, SettledOutcome, StageContext } from './stages.js';

export const CLAIM_HEADER = {
  store: 'prism-claim-store',
  key: 'prism-claim-key',
  size: 'prism-claim-size',
  checksum: 'prism-claim-checksum',
  encoding: 'prism-claim-encoding',
  contentType: 'prism-claim-content-type',
  groups: 'prism-claim-groups',
} as const;

/** The content type a claimed message travels with (plain consumers see it instead of the payload's). */
export const CLAIM_CONTENT_TYPE = 'application/vnd.prism.claim-check';

export type ClaimCompression = 'none' | 'gzip' | 'zstd';

export interface ClaimCheckOptions {
  /** Payloads larger than this many bytes are stored. */
  thresholdBytes: number;
  compression: ClaimCompression;
  ttlMs: number;
}

export const CLAIM_CHECK_DEFAULTS = { threshold: '512KiB', compression: 'none', ttl: '7d' } as const;

const SWEEP_INTERVAL_MS = 60 * 60 * 1000;
const KEY_PREFIX = 'claims/';
/** Where an upload without an announced SHA-256 is written until its hash is known. */
const PENDING_PREFIX = `${KEY_PREFIX}pending/`;
const EMPTY = new Uint8Array(0);
/** A message id or group name usable as one key segment as it is. */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
/** A key this stage writes: `claims/<sha256>/<id>[.gz|.zst]`. */
const CLAIM_KEY = /^claims\/[0-9a-f]{64}\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** The name of a group's marker (and in `prism-claim-groups`): the group, or a hash of it. */
export function markerName(group: string): string {
  return SEGMENT.test(group) ? group : `sha256-${sha256Hex(Buffer.from(group, 'utf8'))}`;
}

/**
 * The markers stored beside an object: one per listed group, when there are two or more. The one
 * group of a single-group topic needs none: its acknowledgement deletes the object.
 */
function markersFor(groups: readonly string[]): readonly string[] {
  return groups.length > 1 ? groups : [];
}

function markerKey(key: string, marker: string): string {
  return `${key}.groups/${marker}`;
}
const SUFFIX: Readonly<Record<ClaimCompression, string>> = { none: '', gzip: '.gz', zstd: '.zst' };
const ENCODING: Readonly<Record<ClaimCompression, string>> = { none: 'identity', gzip: 'gzip', zstd: 'zstd' };

/** node:zlib's zstd functions (Node >= 22.15); the @types/node we build with predates them. */
interface ZstdZlib {
  createZstdCompress(): Transform;
  zstdCompress(buf: Uint8Array, cb: (err: Error | null, out: Buffer) => void): void;
  zstdDecompress(
    buf: Uint8Array,
    options: { maxOutputLength: number },
    cb: (err: Error | null, out: Buffer) => void,
  ): void;
}
const zstd = zlib as unknown as ZstdZlib;

const compressors: Readonly<Record<ClaimCompression, (bytes: Uint8Array) => Promise<Uint8Array>>> = {
  none: async (bytes) => bytes,
  gzip: promisify(zlib.gzip) as (bytes: Uint8Array) => Promise<Uint8Array>,
  zstd: promisify((bytes: Uint8Array, cb: (err: Error | null, out: Buffer) => void) =>
    zstd.zstdCompress(bytes, cb),
  ),
};

/** Streaming compressors, for payloads that arrive in chunks. */
const compressorStreams: Readonly<Record<Exclude<ClaimCompression, 'none'>, () => Transform>> = {
  gzip: () => zlib.createGzip(),
  zstd: () => zstd.createZstdCompress(),
};

const gunzip = promisify(zlib.gunzip) as (bytes: Uint8Array, o: zlib.ZlibOptions) => Promise<Uint8Array>;
const unzstd = promisify(
  (bytes: Uint8Array, o: { maxOutputLength: number }, cb: (err: Error | null, out: Buffer) => void) =>
    zstd.zstdDecompress(bytes, o, cb),
);

/** Undoes an encoding; the output may not exceed `size` bytes (a claim cannot inflate beyond it). */
async function decode(encoding: string, bytes: Uint8Array, size: number): Promise<Uint8Array> {
  const maxOutputLength = Math.max(1, size);
  switch (encoding) {
    case 'identity':
      return bytes;
    case 'gzip':
      return gunzip(bytes, { maxOutputLength });
    case 'zstd':
      return unzstd(bytes, { maxOutputLength });
    default:
      throw new PrismError('E_INVALID_ARGUMENT', `claim encoding ${JSON.stringify(encoding)} is unknown`);
  }
}

/** Reads `claim_check` (defaults filled in); E_INVALID_ARGUMENT names a malformed field. */
export function readClaimCheck(label: string, setting: ClaimCheckSetting): ClaimCheckOptions {
  const invalid = (field: string, value: string, expected: string) =>
    new PrismError(
      'E_INVALID_ARGUMENT',
      `${label}: setting claim_check.${field} is ${JSON.stringify(value)}, expected ${expected}`,
    );
  const thresholdText = setting.threshold || CLAIM_CHECK_DEFAULTS.threshold;
  const thresholdBytes = parseSize(thresholdText);
  if (thresholdBytes === undefined) throw invalid('threshold', thresholdText, 'a size such as 1MiB');
  const compression = setting.compression || CLAIM_CHECK_DEFAULTS.compression;
  if (compression !== 'none' && compression !== 'gzip' && compression !== 'zstd')
    throw invalid('compression', compression, 'none, gzip or zstd');
  if (compression === 'zstd' && typeof zstd.zstdCompress !== 'function') {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `${label}: claim_check.compression zstd needs Node.js 22.15 or later (this is ${process.version})`,
      { hint: 'upgrade Node.js, or use gzip' },
    );
  }
  const ttlText = setting.ttl || CLAIM_CHECK_DEFAULTS.ttl;
  const ttlMs = parseDuration(ttlText);
  if (ttlMs === undefined || !Number.isFinite(ttlMs) || ttlMs <= 0)
    throw invalid('ttl', ttlText, 'a duration such as 12h or 7d');
  return { thresholdBytes, compression, ttlMs };
}

export interface ClaimCheckStageOptions extends ClaimCheckOptions {
  /** The store's backend name, written into the claim. */
  storeName: string;
  /** The started `objects` driver (looked up per call: the slot starts after the stage is built). */
  store: () => ObjectStore;
  /** Producer side: the consuming groups of a topic, whose acks the object waits for. */
  groupsOf?: (topic: string) => readonly string[];
  onSweepError?: (err: unknown) => void;
  now?: () => number;
}

export class ClaimCheckStage implements PayloadStage {
  readonly name = 'claim-check';
  private lastSweep = -Infinity;
  private sweeping: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: ClaimCheckStageOptions) {
    this.now = options.now ?? Date.now;
  }

  async seal(message: Message, context: StageContext): Promise<Message> {
    const payload = message.payload;
    if (payload.byteLength <= this.options.thresholdBytes || message.headers[CLAIM_HEADER.key] !== undefined)
      return message;
    const store = this.options.store();
    this.sweepInBackground(store);
    const checksum = sha256Hex(payload);
    const compression = this.options.compression;
    const messageId = message.headers[HEADER.messageId] ?? '';
    const id = SEGMENT.test(messageId) ? messageId : randomUUID();
    const key = `${KEY_PREFIX}${checksum}/${id}${SUFFIX[compression]}`;
    const groups = this.groupsOf(context.topic);
    const markers = markersFor(groups);
    const ttl = { ttlMs: this.options.ttlMs };
    // Stored as it is, the payload goes as a body of announced size and of the hash just computed
    // from it: neither the driver nor S3's request signing hashes it again (putObjectStream).
    const put =
      compression === 'none'
        ? store.putObjectStream(key, oneChunk(payload), {
            ...ttl,
            size: payload.byteLength,
            sha256: checksum,
            sha256Computed: true,
          })
        : compressors[compression](payload).then((stored) => store.putObject(key, stored, ttl));
    await Promise.all([
      put,
      ...markers.map(async (marker) => store.putObject(markerKey(key, marker), EMPTY, ttl)),
    ]);
    return this.claimed(message, { key, size: payload.byteLength, checksum, groups });
  }

  /**
   * Streams an upload above the threshold into the store (compressed on the way when asked),
   * counting and hashing the original bytes as they pass. With an announced SHA-256 the object
   * goes straight to its content-addressed key (the driver refuses to complete it on a
   * mismatch); without one it goes to `claims/pending/<uuid>` and is renamed once the hash is
   * known. A failure leaves no object behind (an aborted upload), or a pending one that expires
   * after `ttl` and is swept like any other claim.
   */
  async sealUpload(
    message: Message,
    upload: PayloadUpload,
    context: StageContext,
  ): Promise<Message | undefined> {
    if (upload.size <= this.options.thresholdBytes || message.headers[CLAIM_HEADER.key] !== undefined)
      return undefined;
    const store = this.options.store();
    this.sweepInBackground(store);
    const compression = this.options.compression;
    const announced = upload.sha256?.toLowerCase();
    if (announced !== undefined && !/^[0-9a-f]{64}$/.test(announced)) {
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `sha256 ${JSON.stringify(upload.sha256)} is not 64 hex digits`,
      );
    }
    const messageId = message.headers[HEADER.messageId] ?? '';
    const id = SEGMENT.test(messageId) ? messageId : randomUUID();
    const keyOf = (checksum: string) => `${KEY_PREFIX}${checksum}/${id}${SUFFIX[compression]}`;
    const target =
      announced !== undefined ? keyOf(announced) : `${PENDING_PREFIX}${randomUUID()}${SUFFIX[compression]}`;
    const groups = this.groupsOf(context.topic);
    const markers = markersFor(groups);
    const ttl = { ttlMs: this.options.ttlMs };

    // The original bytes: counted (never more than announced) and, when the store sees other
    // bytes (compressed), hashed here; without compression the driver's hash is the payload's.
    const hash = compression === 'none' ? undefined : createHash('sha256');
    let received = 0;
    let checksum: string | undefined;
    const original = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of upload.chunks) {
        received += chunk.byteLength;
        if (received > upload.size) throw sizeMismatch(upload.size, `more than ${upload.size}`);
        hash?.update(chunk);
        yield chunk;
      }
      if (received !== upload.size) throw sizeMismatch(upload.size, String(received));
      if (hash !== undefined) {
        checksum = hash.digest('hex');
        if (announced !== undefined && checksum !== announced) throw shaMismatch(announced, checksum);
      }
    };
    let body: AsyncIterable<Uint8Array> = original();
    if (compression !== 'none') {
      const compressor = compressorStreams[compression]();
      pipeline(Readable.from(body, { highWaterMark: 1 }), compressor, () => undefined);
      body = compressor;
    }
    const putMarkers = (key: string) =>
      Promise.all(markers.map(async (marker) => store.putObject(markerKey(key, marker), EMPTY, ttl)));
    // With an announced hash the key is known now: the markers go beside the object's put, and
    // are deleted again when it fails (or left to the TTL and the sweep when that fails too).
    const early = announced !== undefined ? putMarkers(target) : undefined;
    early?.catch(() => undefined);
    let info;
    try {
      // Without compression the driver checks an announced hash before the object becomes visible.
      info = await store.putObjectStream(target, body, {
        ...ttl,
        // Without compression the stored bytes are the payload: their length is known in advance.
        ...(compression === 'none' ? { size: upload.size } : {}),
        ...(compression === 'none' && announced !== undefined ? { sha256: announced } : {}),
      });
    } catch (err) {
      if (early !== undefined) {
        await early.catch(() => undefined);
        await Promise.allSettled(
          markers.map(async (marker) => store.deleteObject(markerKey(target, marker))),
        );
      }
      throw err;
    }
    checksum ??= info.sha256;
    const key = keyOf(checksum);
    if (target !== key) {
      try {
        await store.renameObject(target, key);
      } catch (err) {
        await store.deleteObject(target).catch(() => undefined);
        throw err;
      }
    }
    await (early ?? putMarkers(key));
    return this.claimed(message, { key, size: upload.size, checksum, groups });
  }

  /** The topic's consuming groups, as their marker names. */
  private groupsOf(topic: string): string[] {
    return [...new Set((this.options.groupsOf?.(topic) ?? []).map(markerName))];
  }

  /** The message that travels instead: an empty payload and the claim's headers. */
  private claimed(
    message: Message,
    claim: { key: string; size: number; checksum: string; groups: readonly string[] },
  ): Message {
    const headers: Record<string, string> = { ...message.headers };
    const contentType = headers[HEADER.contentType];
    headers[CLAIM_HEADER.store] = this.options.storeName;
    headers[CLAIM_HEADER.key] = claim.key;
    headers[CLAIM_HEADER.size] = String(claim.size);
    headers[CLAIM_HEADER.checksum] = `sha256:${claim.checksum}`;
    headers[CLAIM_HEADER.encoding] = ENCODING[this.options.compression];
    if (contentType !== undefined) headers[CLAIM_HEADER.contentType] = contentType;
    if (claim.groups.length > 0) headers[CLAIM_HEADER.groups] = claim.groups.join(',');
    headers[HEADER.contentType] = CLAIM_CONTENT_TYPE;
    return { topic: message.topic, payload: new Uint8Array(0), headers };
  }

  async open(message: Message, _context: StageContext): Promise<Message> {
    const key = message.headers[CLAIM_HEADER.key];
    if (key === undefined) return message;
    const size = Number(message.headers[CLAIM_HEADER.size]);
    const checksum = message.headers[CLAIM_HEADER.checksum] ?? '';
    const encoding = message.headers[CLAIM_HEADER.encoding] ?? 'identity';
    if (!Number.isSafeInteger(size) || size < 0 || !/^sha256:[0-9a-f]{64}$/.test(checksum)) {
      throw new PrismError('E_INVALID_ARGUMENT', `claim ${key} has a malformed size or checksum header`);
    }
    const reader = await this.options.store().readObject(key);
    if (reader === undefined) {
      throw new PrismError(
        'E_NOT_FOUND',
        `the claimed payload ${key} is not in the ${message.headers[CLAIM_HEADER.store] ?? 'object'} store (expired after claim_check.ttl, or deleted)`,
      );
    }
    const mismatch = () =>
      new PrismError(
        'E_INTERNAL',
        `claim ${key}: the stored payload does not match the claim's size ${size} and ${checksum}`,
      );
    let payload: Uint8Array;
    if (encoding === 'identity') {
      // Placed and hashed as it arrives, in memory the delivery is encoded around (no copy).
      payload = allocateDeliveryPayload(size);
      const hash = createHash('sha256');
      await fillFrom(reader, payload, mismatch, (view) => hash.update(view));
      if (`sha256:${hash.digest('hex')}` !== checksum) throw mismatch();
    } else {
      const stored = await readAll(reader, mismatch);
      try {
        payload = await decode(encoding, stored, size);
      } catch (err) {
        if (err instanceof PrismError) throw err;
        throw new PrismError('E_INTERNAL', `claim ${key}: the stored ${encoding} payload does not decode`, {
          cause: err,
        });
      }
      if (payload.byteLength !== size || `sha256:${sha256Hex(payload)}` !== checksum) throw mismatch();
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(message.headers)) {
      if (!name.startsWith('prism-claim-')) headers[name] = value;
    }
    const contentType = message.headers[CLAIM_HEADER.contentType];
    if (contentType !== undefined) headers[HEADER.contentType] = contentType;
    else delete headers[HEADER.contentType];
    return { topic: message.topic, payload, headers };
  }

  /**
   * Releases the delivering group's marker after its ack; deletes the object when no listed
   * group's marker is left (at once when it is the only group listed). A dead-lettered message
   * keeps its marker and object: its dead-letter copy carries the claim and must still open until
   * the TTL.
   */
  async settled(message: Message, context: StageContext, outcome: SettledOutcome): Promise<void> {
    const key = message.headers[CLAIM_HEADER.key];
    const listed = message.headers[CLAIM_HEADER.groups];
    if (outcome !== 'acked' || key === undefined || listed === undefined || context.group === undefined)
      return;
    const groups = listed.split(',');
    const mine = markerName(context.group);
    if (!CLAIM_KEY.test(key.replace(/\.(gz|zst)$/, '')) || !groups.includes(mine)) return;
    const store = this.options.store();
    if (markersFor(groups).includes(mine)) await store.deleteObject(markerKey(key, mine));
    for (const other of groups) {
      if (other !== mine && (await store.statObject(markerKey(key, other))) !== undefined) return;
    }
    await store.deleteObject(key);
  }

  async close(): Promise<void> {
    await this.sweeping;
  }

  /** Deletes expired claims, at most once per SWEEP_INTERVAL_MS, without holding up the publish. */
  private sweepInBackground(store: ObjectStore): void {
    const now = this.now();
    if (this.sweeping !== undefined || now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    this.sweeping = store
      .sweepObjects(KEY_PREFIX)
      .then(
        () => undefined,
        (err: unknown) => this.options.onSweepError?.(err),
      )
      .finally(() => (this.sweeping = undefined));
  }
}

function sizeMismatch(size: number, received: string): PrismError {
  return new PrismError(
    'E_INVALID_ARGUMENT',
    `the upload announced ${size} bytes and sent ${received}; nothing was published`,
  );
}

function shaMismatch(announced: string, actual: string): PrismError {
  return new PrismError(
    'E_INVALID_ARGUMENT',
    `the upload announced sha256 ${announced} and its bytes hash to ${actual}; nothing was published`,
    { hint: 'the bytes changed on the way, or the announced hash is of other bytes' },
  );
}

/** STAGE_FACTORIES entry: a claim-check stage when the pattern sets `claim_check`. */
export const claimCheckStage: StageFactory = (input: StageFactoryInput) => {
  const setting = input.reader.raw?.claimCheck;
  if (setting === undefined) return undefined;
  if (!input.slots.has('objects')) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `${input.label}: claim_check needs the objects slot to store payloads in`,
      { hint: 'bind `slots: { objects: { backend: s3 } }` (or filesystem, memstore)' },
    );
  }
  const options = readClaimCheck(input.label, setting);
  return new ClaimCheckStage({
    ...options,
    ...(input.type === 'producer' ? { groupsOf: consumingGroups(input.namespace) } : {}),
    storeName: input.slots.backend('objects') ?? 'objects',
    store: () => input.slots.driver('objects') as unknown as ObjectStore,
    onSweepError: (err) =>
      input.logger?.warn(
        { pattern: input.label, error: err instanceof Error ? err.message : String(err) },
        'claim-check sweep failed',
      ),
  });
};

/**
 * The groups that consume a topic, from the namespace declaration: each consumer pattern's
 * `consumer_group` and each mailbox pattern's own group, on the topic their settings name.
 */
export function consumingGroups(namespace: NamespaceRequest): (topic: string) => readonly string[] {
  const byTopic = new Map<string, string[]>();
  for (const pattern of namespace.patterns) {
    const topic = pattern.settings?.topic;
    if (!topic) continue;
    const group =
      pattern.type === 'consumer'
        ? pattern.settings?.consumerGroup
        : pattern.type === 'mailbox'
          ? mailboxGroup(pattern.name)
          : undefined;
    if (!group) continue;
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), group]);
  }
  return (topic) => byTopic.get(topic) ?? [];
}
