/**
 * The consumer runner: delivers enveloped messages from the `source` slot, at least once.
 *
 * - Source: `Queue.consume` with the consumer group when the backend has `queue` (durable,
 *   redelivery after `ack_timeout`), else `PubSub.subscribe`, where the runner itself redelivers
 *   a nacked message while it runs. With the namespace's `needs.delivery: at-most-once`,
 *   `PubSub.subscribe` wherever the backend has it (src/runners/delivery.ts).
 * - Attempts: the driver's count, and, with a `state` slot, the count kept there, so a restart (or
 *   a backend that counts in memory, like Kafka) does not start a failing message again at 1.
 * - Dead letter: a message nacked on its `max_retries`-th delivery (or delivered more often than
 *   that without an ack) goes to the `dead-letter` slot, on topic `dead_letter_topic` (default
 *   `<topic>.dead-letter`), with its original payload and headers plus
 *   `prism-dead-letter-reason`, `prism-original-topic` and `prism-attempts`; then the original is
 *   acknowledged. Without a dead-letter slot the message
 *   is logged and acknowledged.
 * - Acknowledged ids: with a `state` slot, every acknowledged message id is remembered for
 *   `ackedRetentionMs`, so a redelivery of a message that was already acknowledged (the backend
 *   did not record the ack before a crash or restart) is acknowledged and skipped.
 */
import type { AnyDriver, Delivery, KeyValueStore, Message, Subscription } from '../../drivers/interfaces.js';
import { checkTopic } from '../topic.js';
import { PrismError } from '../../errors.js';
import { messagingCapability, type DeliveryGuarantee } from '../delivery.js';
import { DEAD_LETTER_HEADER, decodeEnvelope } from '../envelope.js';
import { PayloadPipeline, type SettledOutcome } from '../payload/stages.js';
import { RunnerBase, stderrLogger, type RunnerLogger } from '../lifecycle.js';
import { isBackendDown, withRetry, type RetryOptions } from '../retry.js';
import { required, type SettingsReader } from '../settings.js';
import type { SlotSet } from '../slots.js';
import type { ConsumerDelivery, ConsumerRunnerApi, ConsumerSubscription } from '../types.js';

/** Longest pause before redelivering a message whose payload stage found its store down. */
const STORE_DOWN_PAUSE_MS = 5_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface ConsumerSettings {
  topic: string;
  group: string;
  /** Deliveries before a message is dead-lettered (0 counts as 1). */
  maxRetries: number;
  ackTimeoutMs: number;
  /** Where dead letters go; absent = `<topic>.dead-letter` of the subscribed topic. */
  deadLetterTopic?: string;
}

export function readConsumerSettings(label: string, reader: SettingsReader): ConsumerSettings {
  const raw = reader.raw;
  return {
    topic: required(label, 'topic', reader.string('topic', raw?.topic)),
    group: required(label, 'consumer_group', reader.string('consumer_group', raw?.consumerGroup)),
    maxRetries: reader.integer('max_retries', raw?.maxRetries, 0) ?? 3,
    ackTimeoutMs: reader.duration('ack_timeout', raw?.ackTimeout) ?? 30_000,
    ...deadLetterSetting(reader),
  };
}

function deadLetterSetting(reader: SettingsReader): Pick<ConsumerSettings, 'deadLetterTopic'> {
  const topic = reader.string('dead_letter_topic', reader.raw?.deadLetterTopic);
  return topic === undefined ? {} : { deadLetterTopic: topic };
}

export interface ConsumerOptions {
  logger?: RunnerLogger;
  /** The namespace's `needs.delivery`; default at-least-once. */
  delivery?: DeliveryGuarantee;
  /** How long acknowledged ids are remembered in the state slot. Default 24 h. */
  ackedRetentionMs?: number;
  /** Delay before the runner redelivers a nacked pub/sub message. Default 100 ms. */
  pubsubRedeliveryDelayMs?: number;
  /** Backoff of dead-letter writes. */
  retry?: Omit<RetryOptions, 'maxRetries'>;
  /** Stages every delivered payload passes through before the subscriber gets it. */
  payload?: PayloadPipeline;
}

export const DEFAULT_ACKED_RETENTION_MS = 24 * 3_600_000;

export function deadLetterTopic(topic: string): string {
  return `${topic}.dead-letter`;
}

interface Active {
  topic: string;
  group: string;
  driverSubscription?: Subscription;
  /** Only queue subscriptions share a group's state, so only their acks settle payload stages. */
  queue?: boolean;
  timers: Set<NodeJS.Timeout>;
  closed: boolean;
}

export class ConsumerRunner extends RunnerBase implements ConsumerRunnerApi {
  readonly type = 'consumer' as const;
  private readonly logger: RunnerLogger;
  private readonly active = new Set<Active>();
  private readonly payload: PayloadPipeline;

  constructor(
    namespace: string,
    pattern: string,
    slots: SlotSet,
    readonly settings: ConsumerSettings,
    private readonly options: ConsumerOptions = {},
  ) {
    super(namespace, pattern, slots);
    this.logger = options.logger ?? stderrLogger;
    this.payload = options.payload ?? new PayloadPipeline();
  }

  /** Deliveries a message gets before it is dead-lettered. */
  get maxDeliveries(): number {
    return Math.max(1, this.settings.maxRetries);
  }

  subscribe(
    options: { topic?: string; group?: string; prefetch?: number },
    onDelivery: (delivery: ConsumerDelivery) => void | Promise<void>,
  ): Promise<ConsumerSubscription> {
    return this.track(async () => {
      const topic = checkTopic(options.topic || this.settings.topic);
      const group = options.group || this.settings.group;
      const active: Active = { topic, group, timers: new Set(), closed: false };
      await this.payload.admit({ namespace: this.namespace, pattern: this.pattern, topic });
      const source = this.slots.driver('source');
      const capability = messagingCapability(source, this.options.delivery);
      if (capability === 'queue' && source.consume) {
        active.queue = true;
        active.driverSubscription = await source.consume(
          topic,
          group,
          (delivery) => this.handle(active, delivery, onDelivery),
          {
            ackTimeoutMs: this.settings.ackTimeoutMs,
            ...(options.prefetch !== undefined ? { prefetch: options.prefetch } : {}),
          },
        );
      } else if (capability === 'pubsub' && source.subscribe) {
        active.driverSubscription = await source.subscribe(topic, (message) =>
          this.handle(active, this.localDelivery(active, message, 1, onDelivery), onDelivery),
        );
      } else {
        throw new PrismError(
          'E_CAPABILITY_MISSING',
          `${this.label}: the source implements neither queue nor pubsub`,
        );
      }
      this.active.add(active);
      return { close: () => this.closeActive(active) };
    });
  }

  protected override async onStopping(): Promise<void> {
    await Promise.allSettled([...this.active].map((active) => this.closeActive(active)));
    await this.payload.close();
  }

  private async closeActive(active: Active): Promise<void> {
    if (active.closed) return;
    active.closed = true;
    this.active.delete(active);
    for (const timer of active.timers) clearTimeout(timer);
    active.timers.clear();
    await active.driverSubscription?.close();
  }

  /** A pub/sub message as a delivery whose nack makes the runner deliver it again. */
  private localDelivery(
    active: Active,
    message: Message,
    attempt: number,
    onDelivery: (delivery: ConsumerDelivery) => void | Promise<void>,
  ): Delivery {
    return {
      ...message,
      attempt,
      ack: async () => undefined,
      nack: async () => {
        if (active.closed) return;
        const timer = setTimeout(() => {
          active.timers.delete(timer);
          if (active.closed) return;
          void this.handle(active, this.localDelivery(active, message, attempt + 1, onDelivery), onDelivery);
        }, this.options.pubsubRedeliveryDelayMs ?? 100);
        active.timers.add(timer);
      },
    };
  }

  // -- state ------------------------------------------------------------------------------------

  private get state(): (AnyDriver & KeyValueStore) | undefined {
    return this.slots.optional('state') as (AnyDriver & KeyValueStore) | undefined;
  }

  private key(active: Active, kind: 'acked' | 'attempts', messageId: string): string {
    return `consumer/${this.pattern}/${active.group}/${active.topic}/${kind}/${messageId}`;
  }

  /** The attempt of this delivery: the driver's, or one more than the state slot remembers. */
  private async countAttempt(active: Active, messageId: string, driverAttempt: number): Promise<number> {
    const state = this.state;
    if (!state || messageId === '') return driverAttempt;
    const key = this.key(active, 'attempts', messageId);
    try {
      const stored = await state.get(key);
      const previous = stored === undefined ? 0 : Number(Buffer.from(stored).toString('utf8')) || 0;
      const attempt = Math.max(driverAttempt, previous + 1);
      await state.set(key, Buffer.from(String(attempt)), this.retentionMs());
      return attempt;
    } catch (err) {
      this.logger.warn(
        { namespace: this.namespace, pattern: this.pattern, messageId, err: String(err) },
        'state slot unavailable; using the driver attempt count',
      );
      return driverAttempt;
    }
  }

  private retentionMs(): number {
    return this.options.ackedRetentionMs ?? DEFAULT_ACKED_RETENTION_MS;
  }

  private async alreadyAcked(active: Active, messageId: string): Promise<boolean> {
    const state = this.state;
    if (!state || messageId === '') return false;
    try {
      return await state.exists(this.key(active, 'acked', messageId));
    } catch (err) {
      this.logger.warn(
        { namespace: this.namespace, pattern: this.pattern, messageId, err: String(err) },
        'state slot unavailable; delivering without the acknowledged-id check',
      );
      return false;
    }
  }

  /** Remembers the id as acknowledged before the backend hears of it, so a lost ack is harmless. */
  private async recordAcked(active: Active, messageId: string): Promise<void> {
    const state = this.state;
    if (!state || messageId === '') return;
    await state.set(
      this.key(active, 'acked', messageId),
      Buffer.from(String(Date.now())),
      this.retentionMs(),
    );
    await state.delete(this.key(active, 'attempts', messageId)).catch(() => false);
  }

  // -- delivery ---------------------------------------------------------------------------------

  private async handle(
    active: Active,
    delivery: Delivery,
    onDelivery: (delivery: ConsumerDelivery) => void | Promise<void>,
  ): Promise<void> {
    if (active.closed) return;
    let envelope = decodeEnvelope(delivery, delivery.attempt);
    const messageId = envelope.messageId;
    // Without a state slot nothing here waits: no await per message on the hot path.
    const state = this.state !== undefined && messageId !== '';
    if (state && (await this.alreadyAcked(active, messageId))) {
      await delivery.ack();
      await this.settle(active, delivery, 'acked');
      return;
    }
    const attempt = state ? await this.countAttempt(active, messageId, delivery.attempt) : delivery.attempt;
    envelope.attempt = attempt;
    if (attempt > this.maxDeliveries) {
      await this.deadLetter(
        active,
        delivery,
        messageId,
        `not acknowledged after ${attempt - 1} deliveries (ack_timeout ${this.settings.ackTimeoutMs} ms)`,
        attempt - 1,
      );
      return;
    }
    if (!this.payload.empty) {
      try {
        envelope = await this.open(active, delivery, attempt);
      } catch (err) {
        const reason = `payload could not be opened: ${err instanceof Error ? err.message : String(err)}`;
        this.logger.warn(
          { namespace: this.namespace, pattern: this.pattern, messageId, attempt, reason },
          'delivery failed',
        );
        if (attempt >= this.maxDeliveries) {
          await this.deadLetter(active, delivery, messageId, reason, attempt);
          return;
        }
        // A store that is down fails each fetch at once: redeliver after a pause, not in a loop
        // that spends max_retries in a second (the claim check's object store, restarting).
        if (isBackendDown(err)) await sleep(Math.min(this.settings.ackTimeoutMs, STORE_DOWN_PAUSE_MS));
        await delivery.nack();
        return;
      }
    }

    let settled = false;
    const consumerDelivery: ConsumerDelivery = {
      envelope,
      ack: async () => {
        if (settled) return;
        settled = true;
        if (state) await this.recordAcked(active, messageId);
        await delivery.ack();
        if (!this.payload.empty && active.queue) await this.settle(active, delivery, 'acked');
      },
      nack: async (reason: string) => {
        if (settled) return;
        settled = true;
        if (attempt >= this.maxDeliveries) {
          await this.deadLetter(active, delivery, messageId, reason, attempt);
        } else {
          await delivery.nack();
        }
      },
    };
    try {
      await onDelivery(consumerDelivery);
    } catch (err) {
      if (!settled) {
        await consumerDelivery.nack(`handler failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /** The envelope of the message as published: every payload stage undone. */
  private async open(active: Active, delivery: Delivery, attempt: number) {
    const context = { namespace: this.namespace, pattern: this.pattern, topic: active.topic };
    const opened = await this.payload.open(
      { topic: delivery.topic, payload: delivery.payload, headers: delivery.headers },
      context,
    );
    const envelope = decodeEnvelope(opened, attempt);
    envelope.attempt = attempt;
    return envelope;
  }

  private async deadLetter(
    active: Active,
    delivery: Delivery,
    messageId: string,
    reason: string,
    attempts: number,
  ): Promise<void> {
    const context = {
      namespace: this.namespace,
      pattern: this.pattern,
      topic: active.topic,
      group: active.group,
      messageId,
      attempts,
      reason,
    };
    const target = this.slots.optional('dead-letter');
    if (target?.enqueue) {
      const enqueue = target.enqueue.bind(target);
      try {
        await withRetry(
          () =>
            enqueue({
              topic: this.settings.deadLetterTopic ?? deadLetterTopic(active.topic),
              payload: delivery.payload,
              headers: {
                ...delivery.headers,
                [DEAD_LETTER_HEADER.reason]: oneLine(reason),
                [DEAD_LETTER_HEADER.originalTopic]: active.topic,
                [DEAD_LETTER_HEADER.attempts]: String(attempts),
              },
            }),
          { maxRetries: 3, ...this.options.retry },
        );
      } catch (err) {
        this.logger.error(
          { ...context, err: String(err) },
          'dead-letter write failed; the message will be redelivered',
        );
        await delivery.nack();
        return;
      }
      this.logger.info(context, 'message moved to the dead-letter slot');
    } else {
      this.logger.warn(
        context,
        'message failed max_retries times and no dead-letter slot is bound; dropping it',
      );
    }
    await this.recordAcked(active, messageId).catch(() => undefined);
    await delivery.ack();
    await this.settle(active, delivery, 'dead-lettered');
  }

  /** Tells the payload stages that the backend took the ack; a failure is logged, never thrown. */
  private async settle(active: Active, delivery: Delivery, outcome: SettledOutcome): Promise<void> {
    if (this.payload.empty || !active.queue) return;
    const context = {
      namespace: this.namespace,
      pattern: this.pattern,
      topic: active.topic,
      group: active.group,
    };
    try {
      await this.payload.settled(
        { topic: delivery.topic, payload: delivery.payload, headers: delivery.headers },
        context,
        outcome,
      );
    } catch (err) {
      this.logger.warn(
        { ...context, outcome, err: err instanceof Error ? err.message : String(err) },
        'a payload stage could not settle an acknowledged message; what it keeps waits for its expiry',
      );
    }
  }
}

/** Header values carry no line breaks (NATS): a multi-line reason is folded into one line. */
function oneLine(text: string): string {
  const folded = text.replace(/[\r\n\0]+/g, ' ').trim();
  return folded === '' ? 'nacked' : folded.slice(0, 1024);
}
