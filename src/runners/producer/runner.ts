/**
 * The producer runner: publishes enveloped messages to the `sink` slot.
 *
 * - Sink: `Queue.enqueue` when the backend has `queue` (durable, consumer groups), else
 *   `PubSub.publish`; with the namespace's `needs.delivery: at-most-once`, `PubSub.publish`
 *   wherever the backend has it (src/runners/delivery.ts).
 * - Envelope: a UUIDv7 message id unless the caller brings one, the topic, namespace, publish
 *   time, and the caller's session stamped by the runner (src/runners/envelope.ts).
 * - Retries: a publish that fails with E_BACKEND_DOWN is retried up to `max_retries` times with
 *   exponential backoff and jitter; other failures are returned at once.
 * - Batching: with `batch_size` > 1 messages wait until the batch holds `batch_size` messages or
 *   `batch_interval` passed since its first message; the batch then goes to the backend as one
 *   request (`Queue.enqueueMany` / `PubSub.publishMany`), retried as a whole while the backend is
 *   down. Batches are sent one after another, each in order; each publish resolves when its batch
 *   was sent. A batch refused for another reason (e.g. one message too large) is sent again one
 *   message at a time, so each publish gets its own outcome.
 * - Lanes: publishes made through one PublishLane (a PublishStream, a PublishBatch) reach the
 *   backend in the order they were made: each is handed to the batcher (or, without batching,
 *   sent and acknowledged) after the previous one. After a backend failure on the lane, its later
 *   publishes fail with the same error instead of being sent.
 * - Deduplication: with `dedup_window` (needs the `state` slot), a message id seen within the
 *   window is answered `duplicate: true` and nothing is published.
 * - Size: with `max_message_size`, a larger payload is refused with E_PAYLOAD_TOO_LARGE
 *   (RESOURCE_EXHAUSTED) before anything is sent; the backend's own limit applies either way.
 * - `stop()` refuses new publishes, sends every pending batch and waits for them.
 */
import type { AnyDriver, KeyValueStore, Message } from '../../drivers/interfaces.js';
import { checkTopic } from '../topic.js';
import { PrismError } from '../../errors.js';
import { messagingCapability, type DeliveryGuarantee } from '../delivery.js';
import { encodeEnvelope } from '../envelope.js';
import { PayloadPipeline } from '../payload/stages.js';
import { RunnerBase, stderrLogger, type RunnerLogger } from '../lifecycle.js';
import { isBackendDown, withRetry, type RetryOptions } from '../retry.js';
import { required, type SettingsReader } from '../settings.js';
import type { SlotSet } from '../slots.js';
import type {
  CallerSession,
  ProducerRunnerApi,
  PublishInput,
  PublishLane,
  PublishResult,
  PublishUploadInput,
} from '../types.js';
import { gatherUpload, refuseInlineOver } from './upload.js';
import { uuidv7 } from '../uuid.js';

export interface ProducerSettings {
  topic: string;
  /** Publish attempts after the first. */
  maxRetries: number;
  /** 1 = no batching. */
  batchSize: number;
  batchIntervalMs: number;
  /** 0 = no deduplication. */
  dedupWindowMs: number;
  /** Largest accepted payload in bytes, and the setting as written; absent = the backend's limit. */
  maxMessageSize?: { bytes: number; text: string };
}

export function readProducerSettings(label: string, reader: SettingsReader): ProducerSettings {
  const raw = reader.raw;
  return {
    topic: required(label, 'topic', reader.string('topic', raw?.topic)),
    maxRetries: reader.integer('max_retries', raw?.maxRetries, 0) ?? 3,
    batchSize: reader.integer('batch_size', raw?.batchSize, 1) ?? 1,
    batchIntervalMs: reader.duration('batch_interval', raw?.batchInterval) ?? 10,
    dedupWindowMs: reader.duration('dedup_window', raw?.dedupWindow) ?? 0,
    ...maxMessageSize(reader),
  };
}

function maxMessageSize(reader: SettingsReader): Pick<ProducerSettings, 'maxMessageSize'> {
  const text = reader.string('max_message_size', reader.raw?.maxMessageSize);
  const bytes = reader.size('max_message_size', reader.raw?.maxMessageSize);
  return text !== undefined && bytes !== undefined ? { maxMessageSize: { bytes, text } } : {};
}

export interface ProducerOptions {
  logger?: RunnerLogger;
  /** The namespace's `needs.delivery`; default at-least-once. */
  delivery?: DeliveryGuarantee;
  /** Backoff tuning (tests shorten it); `maxRetries` comes from the settings. */
  retry?: Omit<RetryOptions, 'maxRetries'>;
  now?: () => number;
  /** Stages every payload passes through before it is sent (src/runners/payload/stages.ts). */
  payload?: PayloadPipeline;
}

/** Longest caller-chosen message id, in characters. */
const MAX_MESSAGE_ID_LENGTH = 256;

interface Prepared {
  messageId: string;
  publishedAtMs: number;
  message: Message;
}

/** Prefixes a batch item's PrismError with its position. */
function atIndex<T>(index: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw withIndex(index, err);
  }
}

async function atIndexAsync<T>(index: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw withIndex(index, err);
  }
}

function withIndex(index: number, err: unknown): unknown {
  if (!(err instanceof PrismError)) return err;
  return new PrismError(err.code, `message ${index}: ${err.message}`, {
    cause: err,
    ...(err.hint !== undefined ? { hint: err.hint } : {}),
  });
}

interface Pending {
  message: Message;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class ProducerRunner extends RunnerBase implements ProducerRunnerApi {
  readonly type = 'producer' as const;
  private readonly logger: RunnerLogger;
  private readonly now: () => number;
  private batch: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  /** Message ids being published right now, so concurrent duplicates are caught too. */
  private readonly reserved = new Map<string, number>();
  private readonly payload: PayloadPipeline;
  /** Lane publishes join the batch synchronously (see batchAtOnce). */
  private readonly joinsBatchAtOnce: boolean;

  constructor(
    namespace: string,
    pattern: string,
    slots: SlotSet,
    readonly settings: ProducerSettings,
    private readonly options: ProducerOptions = {},
  ) {
    super(namespace, pattern, slots);
    this.logger = options.logger ?? stderrLogger;
    this.now = options.now ?? Date.now;
    this.payload = options.payload ?? new PayloadPipeline();
    this.joinsBatchAtOnce = this.payload.empty && settings.dedupWindowMs === 0 && settings.batchSize > 1;
    if (settings.dedupWindowMs > 0 && !slots.has('state')) {
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `${this.label}: dedup_window needs the state slot to remember message ids`,
        { hint: 'bind a state slot (keyvalue) or remove dedup_window' },
      );
    }
  }

  publish(input: PublishInput, session: CallerSession, lane?: PublishLane): Promise<PublishResult> {
    if (!lane)
      return this.track(async () => this.deliver(await this.seal(this.prepare(input, session), session)));
    if (this.joinsBatchAtOnce) return this.track(() => this.batchAtOnce(input, session, lane));
    return this.track(async () => {
      // Sealing may wait (a key, an upload) and runs beside the lane's earlier messages; the lane
      // still hands them to the backend in order.
      const sealing = this.seal(this.prepare(input, session), session);
      sealing.catch(() => undefined);
      const previous = lane.tail;
      let handOver!: () => void;
      lane.tail = new Promise<void>((resolve) => (handOver = resolve));
      try {
        await previous;
        if (lane.failed) throw lane.failed.err;
        return await this.deliver(await sealing, handOver);
      } catch (err) {
        failLane(lane, err);
        throw err;
      } finally {
        handOver();
      }
    });
  }

  /**
   * A lane's publish when nothing can make a message wait before the batcher (no payload stage, no
   * deduplication, batching on): it joins the batch at once, in the order the lane's publishes
   * are made, without the lane's promise chain per message.
   */
  private async batchAtOnce(
    input: PublishInput,
    session: CallerSession,
    lane: PublishLane,
  ): Promise<PublishResult> {
    // Runs synchronously up to the batcher, so the message takes its place in the lane's order.
    if (lane.failed) throw lane.failed.err;
    const { messageId, publishedAtMs, message } = this.prepare(input, session);
    try {
      await this.send(message);
    } catch (err) {
      failLane(lane, err);
      throw err;
    }
    return { messageId, publishedAtMs, duplicate: false };
  }

  /**
   * Publishes `inputs` in batch order on one lane: every message is checked before any is sent,
   * then they go to the batcher (or, without batching, each after the previous one was
   * acknowledged), so a topic receives them in this order on every backend. The first failure
   * ends the call, naming the failing message's index; the messages before it were published.
   * Without batching the later messages are not sent; with `batch_size` > 1 those already queued
   * in the producer's batches are sent.
   */
  publishBatch(inputs: readonly PublishInput[], session: CallerSession): Promise<PublishResult[]> {
    return this.track(async () => {
      inputs.forEach((input, i) => atIndex(i, () => this.prepare(input, session)));
      // The same lane a PublishStream uses: in order, in batches of batch_size.
      const lane = newPublishLane({ stopOnAnyError: true });
      const results = inputs.map((input, i) => atIndexAsync(i, () => this.publish(input, session, lane)));
      for (const result of results) result.catch(() => undefined);
      const out: PublishResult[] = [];
      for (const result of results) out.push(await result);
      return out;
    });
  }

  /**
   * Publishes a payload that arrives in chunks: checked as a Publish (its declared size against
   * `max_message_size`) before a chunk is read; then the payload stages stream it into the claim
   * check's store when they can, or it is gathered and published whole.
   */
  publishUpload(input: PublishUploadInput, session: CallerSession): Promise<PublishResult> {
    return this.track(async () => {
      const { size, sha256, chunks, maxInlineBytes, ...rest } = input;
      const prepared = this.prepare({ ...rest, payload: new Uint8Array(0) }, session, size);
      const context = {
        namespace: this.namespace,
        pattern: this.pattern,
        topic: prepared.message.topic,
        session,
      };
      const sealed = await this.payload.sealUpload(prepared.message, { size, sha256, chunks }, context);
      if (sealed !== undefined) return this.deliver({ ...prepared, message: sealed });
      if (maxInlineBytes !== undefined) refuseInlineOver(size, maxInlineBytes);
      const payload = await gatherUpload(chunks, size, sha256);
      return this.deliver(
        await this.seal({ ...prepared, message: { ...prepared.message, payload } }, session),
      );
    });
  }

  /**
   * Checks one input and builds its enveloped message; nothing is sent. `size`: the payload's
   * size when its bytes come later (an upload).
   */
  private prepare(input: PublishInput, session: CallerSession, size = input.payload.byteLength): Prepared {
    const publishedAtMs = this.now();
    const messageId = input.messageId ?? uuidv7(publishedAtMs);
    if (typeof messageId !== 'string' || messageId === '' || messageId.length > MAX_MESSAGE_ID_LENGTH) {
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `message id must be 1 to ${MAX_MESSAGE_ID_LENGTH} characters`,
      );
    }
    const topic = checkTopic(
      input.topic !== undefined && input.topic !== '' ? input.topic : this.settings.topic,
    );
    if (!(input.payload instanceof Uint8Array))
      throw new PrismError('E_INVALID_ARGUMENT', 'payload must be bytes');
    const limit = this.settings.maxMessageSize;
    if (limit && size > limit.bytes) {
      throw new PrismError(
        'E_PAYLOAD_TOO_LARGE',
        `payload is ${size} bytes; the limit is ${limit.text} (${limit.bytes} bytes, setting max_message_size)`,
        { hint: `send payloads of at most ${limit.bytes} bytes` },
      );
    }
    // A plain object, not protobuf-es `create`: the envelope only becomes headers here.
    const message = encodeEnvelope({
      messageId,
      topic,
      namespace: this.namespace,
      publishedAtMs: BigInt(publishedAtMs),
      contentType: input.contentType ?? '',
      correlationId: input.correlationId ?? '',
      session: { subject: session.subject, tenant: session.tenant, roles: session.roles },
      trace: input.trace
        ? { traceparent: input.trace.traceparent, tracestate: input.trace.tracestate }
        : undefined,
      headers: input.headers ?? {},
      payload: input.payload,
      schemaId: 0,
      schemaVersion: 0,
    });
    return { messageId, publishedAtMs, message };
  }

  /** Passes the prepared message through the payload stages; without stages it is returned as is. */
  private async seal(prepared: Prepared, session: CallerSession): Promise<Prepared> {
    if (this.payload.empty) return prepared;
    const context = {
      namespace: this.namespace,
      pattern: this.pattern,
      topic: prepared.message.topic,
      session,
    };
    return { ...prepared, message: await this.payload.seal(prepared.message, context) };
  }

  /**
   * Sends one prepared message (deduplicated when dedup_window is set); `handOver` is called once
   * the message is queued in a batch, so the next message of a lane may follow it.
   */
  private async deliver(
    { messageId, publishedAtMs, message }: Prepared,
    handOver: () => void = () => undefined,
  ): Promise<PublishResult> {
    if (this.settings.dedupWindowMs > 0) {
      const seenAt = await this.reserve(messageId, publishedAtMs);
      if (seenAt !== undefined) return { messageId, publishedAtMs: seenAt, duplicate: true };
      try {
        const sent = this.send(message);
        if (this.settings.batchSize > 1) handOver();
        await sent;
      } catch (err) {
        await this.release(messageId);
        throw err;
      } finally {
        this.reserved.delete(messageId);
      }
    } else {
      const sent = this.send(message);
      if (this.settings.batchSize > 1) handOver();
      await sent;
    }
    return { messageId, publishedAtMs, duplicate: false };
  }

  protected override async onStopping(): Promise<void> {
    await this.flush();
    await this.payload.close();
  }

  // -- deduplication ----------------------------------------------------------------------------

  private dedupKey(messageId: string): string {
    return `producer/${this.pattern}/dedup/${messageId}`;
  }

  private get state(): AnyDriver & KeyValueStore {
    return this.slots.driver('state') as AnyDriver & KeyValueStore;
  }

  /** Undefined when the id is new (and now reserved), else when it was first published. */
  private async reserve(messageId: string, publishedAtMs: number): Promise<number | undefined> {
    const inFlight = this.reserved.get(messageId);
    if (inFlight !== undefined) return inFlight;
    this.reserved.set(messageId, publishedAtMs);
    try {
      const key = this.dedupKey(messageId);
      const seen = await this.retrying(() => this.state.get(key));
      if (seen !== undefined) {
        this.reserved.delete(messageId);
        const at = Number(Buffer.from(seen).toString('utf8'));
        return Number.isFinite(at) ? at : publishedAtMs;
      }
      const ttl = Number.isFinite(this.settings.dedupWindowMs) ? this.settings.dedupWindowMs : 0;
      await this.retrying(() => this.state.set(key, Buffer.from(String(publishedAtMs)), ttl));
      return undefined;
    } catch (err) {
      this.reserved.delete(messageId);
      throw err;
    }
  }

  /** A publish that failed must not block the caller's retry with the same id. */
  private async release(messageId: string): Promise<void> {
    try {
      await this.state.delete(this.dedupKey(messageId));
    } catch (err) {
      this.logger.warn(
        { namespace: this.namespace, pattern: this.pattern, messageId, err: String(err) },
        'could not forget the id of a failed publish; a retry within dedup_window will be reported as duplicate',
      );
    }
  }

  // -- sending ----------------------------------------------------------------------------------

  private retrying<T>(operation: () => Promise<T>): Promise<T> {
    return withRetry(operation, {
      ...this.options.retry,
      maxRetries: this.settings.maxRetries,
      onRetry: (err, retry, delayMs) =>
        this.logger.warn(
          { namespace: this.namespace, pattern: this.pattern, retry, delayMs, err: String(err) },
          'backend down; retrying',
        ),
    });
  }

  private sink(): { one: (m: Message) => Promise<void>; many: (m: readonly Message[]) => Promise<void> } {
    const sink = this.slots.driver('sink');
    const capability = messagingCapability(sink, this.options.delivery);
    if (capability === 'queue' && sink.enqueue && sink.enqueueMany)
      return { one: (m) => sink.enqueue!(m), many: (m) => sink.enqueueMany!(m) };
    if (capability === 'pubsub' && sink.publish && sink.publishMany)
      return { one: (m) => sink.publish!(m), many: (m) => sink.publishMany!(m) };
    throw new PrismError(
      'E_CAPABILITY_MISSING',
      `${this.label}: the sink implements neither queue nor pubsub`,
    );
  }

  private sendNow(message: Message): Promise<void> {
    return this.retrying(() => this.sink().one(message));
  }

  private send(message: Message): Promise<void> {
    if (this.settings.batchSize <= 1) return this.sendNow(message);
    return new Promise<void>((resolve, reject) => {
      this.batch.push({ message, resolve, reject });
      if (this.batch.length >= this.settings.batchSize) {
        void this.flush();
      } else if (this.timer === undefined) {
        this.timer = setTimeout(() => void this.flush(), this.settings.batchIntervalMs);
      }
    });
  }

  /** Sends the pending batch after the ones already being sent; resolves when it was sent. */
  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return this.sending;
    const previous = this.sending;
    this.sending = this.trackAlways(async () => {
      await previous;
      try {
        await this.retrying(() => this.sink().many(batch.map((p) => p.message)));
        for (const pending of batch) pending.resolve();
        return;
      } catch (err) {
        if (batch.length === 1 || isBackendDown(err)) {
          for (const pending of batch) pending.reject(err);
          return;
        }
      }
      // Refused for another reason: one at a time, so only the culprit fails.
      for (const pending of batch) {
        try {
          await this.sendNow(pending.message);
          pending.resolve();
        } catch (err) {
          pending.reject(err);
        }
      }
    });
    return this.sending;
  }
}

export function newPublishLane(options: { stopOnAnyError?: boolean } = {}): PublishLane {
  return { tail: Promise.resolve(), stopOnAnyError: options.stopOnAnyError ?? false };
}

/** A backend outage (or any error, on a stop-on-any-error lane) fails the lane's later publishes. */
function failLane(lane: PublishLane, err: unknown): void {
  if (lane.stopOnAnyError || isBackendDown(err) || isUnavailable(err)) lane.failed ??= { err };
}

function isUnavailable(err: unknown): boolean {
  return err instanceof PrismError && err.code === 'E_UNAVAILABLE';
}
