/**
 * Payload stages: steps a message's payload passes through between the caller and the backend.
 *
 * On publish, the producer runner applies every stage's `seal` in order after it has built the
 * enveloped message and before it is sent (a schema check, encryption, a claim check, …); on
 * delivery, the consumer runner applies every stage's `open` in reverse order before it decodes
 * the envelope. A stage reads and writes the driver Message: its payload and its `prism-*`
 * headers (src/runners/envelope.ts owns the envelope's own headers; a stage adds its own under
 * the reserved prefix). A stage must leave a message it has nothing to do with unchanged, so a
 * consumer opens messages published before the stage was configured, and by plain producers.
 *
 * A failing `seal` fails that publish with the stage's PrismError; nothing is sent. A failing
 * `open` is a failed delivery: the consumer nacks it (and dead-letters it after `max_retries`).
 */
import type { Message } from '../../drivers/interfaces.js';
import type { CallerSession } from '../types.js';

/** What a stage knows about the message it handles. */
export interface StageContext {
  readonly namespace: string;
  readonly pattern: string;
  readonly topic: string;
  /** The publisher's session on publish; absent on delivery (the runner's own identity applies). */
  readonly session?: CallerSession;
  /** Delivery side: the consumer group the message was delivered to. */
  readonly group?: string;
}

/**
 * A payload that arrives in chunks (Producer/PublishUpload): its declared size, the SHA-256 the
 * caller announced (if any), and the chunks, to be read once, in order.
 */
export interface PayloadUpload {
  readonly size: number;
  readonly sha256?: string | undefined;
  readonly chunks: AsyncIterable<Uint8Array>;
}

/** How a delivered message was settled with the backend: acknowledged, or moved to dead letters. */
export type SettledOutcome = 'acked' | 'dead-lettered';

export interface PayloadStage {
  /** Names the stage in logs and errors, e.g. "schema", "encryption", "claim-check". */
  readonly name: string;
  /** Publish side: returns the message to send (a new object, or `message` unchanged). */
  seal(message: Message, context: StageContext): Promise<Message>;
  /**
   * Publish side, for a payload that arrives in chunks, when this is the runner's only stage:
   * seals `message` (whose payload is empty) with the upload's bytes without gathering them, or
   * returns undefined, without reading a chunk, when it needs the whole payload (the runner then
   * gathers the chunks and calls `seal`). A byte count other than `upload.size`, or a SHA-256
   * other than `upload.sha256`, fails with E_INVALID_ARGUMENT and leaves nothing behind.
   */
  sealUpload?(message: Message, upload: PayloadUpload, context: StageContext): Promise<Message | undefined>;
  /** Delivery side: undoes `seal`; returns `message` unchanged when the stage did not seal it. */
  open(message: Message, context: StageContext): Promise<Message>;
  /**
   * Delivery side, before a subscription takes its first message: refuses (e.g.
   * E_PERMISSION_DENIED) when this runner could never open what it will receive, so the
   * subscriber is told instead of every message failing and being redelivered.
   */
  admit?(context: StageContext): Promise<void>;
  /**
   * Delivery side, after the backend has taken the acknowledgement of a message delivered to a
   * consumer group (queue subscriptions only): `message` is the message as delivered, before
   * `open`. Lets a stage release what it kept for that group (the claim check deletes its object
   * once every group acknowledged). A failure is logged by the runner and changes nothing about
   * the acknowledgement; the stage must leave whatever it could not release to its own expiry.
   */
  settled?(message: Message, context: StageContext, outcome: SettledOutcome): Promise<void>;
  /** Releases what the stage holds (caches, clients) when its runner stops. */
  close?(): Promise<void>;
}

/** The stages of one runner, applied in order on publish and in reverse order on delivery. */
export class PayloadPipeline {
  constructor(private readonly stages: readonly PayloadStage[] = []) {}

  get empty(): boolean {
    return this.stages.length === 0;
  }

  async seal(message: Message, context: StageContext): Promise<Message> {
    let sealed = message;
    for (const stage of this.stages) sealed = await stage.seal(sealed, context);
    return sealed;
  }

  /** The only stage's `sealUpload`; undefined (nothing read) when there is none or several stages. */
  async sealUpload(
    message: Message,
    upload: PayloadUpload,
    context: StageContext,
  ): Promise<Message | undefined> {
    const [only, ...more] = this.stages;
    if (only?.sealUpload === undefined || more.length > 0) return undefined;
    return only.sealUpload(message, upload, context);
  }

  async open(message: Message, context: StageContext): Promise<Message> {
    let opened = message;
    for (let i = this.stages.length - 1; i >= 0; i--) {
      opened = await this.stages[i]!.open(opened, context);
    }
    return opened;
  }

  /** Runs every stage's `settled` (in `open` order); throws the first failure after all ran. */
  async settled(message: Message, context: StageContext, outcome: SettledOutcome): Promise<void> {
    let failure: { err: unknown } | undefined;
    for (let i = this.stages.length - 1; i >= 0; i--) {
      try {
        await this.stages[i]!.settled?.(message, context, outcome);
      } catch (err) {
        failure ??= { err };
      }
    }
    if (failure) throw failure.err;
  }

  async admit(context: StageContext): Promise<void> {
    for (const stage of this.stages) await stage.admit?.(context);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.stages.map(async (stage) => stage.close?.()));
  }
}
