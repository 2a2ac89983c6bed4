/**
 * The mailbox runner (proto/prism/data/v1/mailbox.proto has the contract): stores every message
 * of its topic once in the `store` slot and answers Query, Get, Delete and Watch over it.
 *
 * Ingest reuses the consumer machinery: a ConsumerRunner over the same slots subscribes to the
 * topic with the mailbox's own group (`prism-mailbox-<pattern>`), so the source capability follows
 * the namespace's `needs.delivery`, envelopes decode as everywhere else, and a failed insert is
 * negatively acknowledged and redelivered. Deliveries are inserted in batches (what arrived while
 * the previous insert ran, one transaction) and each is acknowledged only after its batch
 * committed; none is ever dead-lettered (the consumer's `max_retries` is set out of reach), since
 * a store that is down must delay ingest, not lose messages.
 *
 * The ConsumerRunner shares this runner's SlotSet and never stops on its own: this runner starts
 * and stops the slots, closes the ingest subscription when it stops, and builds a new ingest
 * ConsumerRunner on every start.
 *
 * Retention runs on a timer beside ingest (never in the ingest path): it deletes what was
 * published before now - `retention`, then the oldest beyond `max_messages`, in batches.
 */
import type {
  AnyDriver,
  MailboxCapability,
  MailboxFilter,
  MailboxOrder,
  MailboxRecord,
  MailboxStore,
} from '../../drivers/interfaces.js';
import { checkFilter } from '../../drivers/mailbox-sql.js';
import { PrismError } from '../../errors.js';
import type { MailboxMessage } from '../../gen/prism/data/v1/mailbox_pb.js';
import { ConsumerRunner } from '../consumer/runner.js';
import type { DeliveryGuarantee } from '../delivery.js';
import { RunnerBase, stderrLogger, type RunnerLogger } from '../lifecycle.js';
import { required, type SettingsReader } from '../settings.js';
import type { SlotSet } from '../slots.js';
import type { ConsumerDelivery, ConsumerSubscription } from '../types.js';
import { toMessage, toRecord } from './records.js';
import { Watchers } from './watchers.js';

export interface MailboxSettings {
  topic: string;
  indexedHeaders: string[];
  /** Milliseconds; Infinity keeps messages forever. */
  retentionMs: number;
  /** Undefined: no limit. */
  maxMessages?: number;
  /** Largest payload stored, in bytes. */
  maxMessageSize: number;
}

export function readMailboxSettings(label: string, reader: SettingsReader): MailboxSettings {
  const raw = reader.raw;
  const maxMessages = reader.integer('max_messages', raw?.maxMessages, 1);
  return {
    topic: required(label, 'topic', reader.string('topic', raw?.topic)),
    indexedHeaders: [...(raw?.indexedHeaders ?? [])],
    retentionMs: reader.duration('retention', raw?.retention) ?? Infinity,
    ...(maxMessages !== undefined ? { maxMessages } : {}),
    maxMessageSize: reader.size('max_message_size', raw?.maxMessageSize) ?? 1024 ** 2,
  };
}

export interface MailboxOptions {
  logger?: RunnerLogger;
  /** The namespace's `needs.delivery`; default at-least-once. */
  delivery?: DeliveryGuarantee;
  /** Interval of the retention sweep. Default: a quarter of `retention`, between 1 s and 60 s. */
  sweepIntervalMs?: number;
  /** How long the source waits for the store before redelivering. Default 30 s. */
  ackTimeoutMs?: number;
  /** Pause after a failed insert before the message is handed back for redelivery. Default 1 s. */
  retryDelayMs?: number;
}

/** The consumer group a mailbox pattern consumes its topic with. */
export function mailboxGroup(pattern: string): string {
  return `prism-mailbox-${pattern}`;
}

export interface MailboxQuery {
  filter: MailboxFilter;
  order: MailboxOrder;
  limit: number;
  pageToken?: string;
}

export const DEFAULT_QUERY_LIMIT = 100;

/** What the Mailbox gRPC service calls. */
export interface MailboxRunnerApi {
  readonly namespace: string;
  readonly pattern: string;
  query(query: MailboxQuery): Promise<{ messages: MailboxMessage[]; nextPageToken: string }>;
  /** E_NOT_FOUND when the id is not stored. */
  get(messageId: string): Promise<MailboxMessage>;
  /** By ids, or by a filter with at least one condition; how many were deleted. */
  delete(target: { messageIds: readonly string[] } | { filter: MailboxFilter }): Promise<number>;
  /** Messages stored from now on that match; `onEnd` runs when the runner stops. */
  watch(filter: MailboxFilter, onMessage: (message: MailboxMessage) => void, onEnd: () => void): () => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Most records in one insert transaction. */
const MAX_BATCH = 500;
/** Deliveries queued before the source waits for the store. */
const MAX_PENDING = 2_000;

interface Pending {
  record: MailboxRecord;
  delivery: ConsumerDelivery;
}

export class MailboxRunner extends RunnerBase implements MailboxRunnerApi {
  readonly type = 'mailbox' as const;
  private readonly logger: RunnerLogger;
  private readonly watchers = new Watchers<MailboxMessage>();
  private box: MailboxStore | undefined;
  private ingest: ConsumerSubscription | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    namespace: string,
    pattern: string,
    slots: SlotSet,
    readonly settings: MailboxSettings,
    private readonly options: MailboxOptions = {},
  ) {
    super(namespace, pattern, slots);
    this.logger = options.logger ?? stderrLogger;
  }

  protected override async onStart(): Promise<void> {
    const store = this.slots.driver('store') as AnyDriver & Partial<MailboxCapability>;
    if (!store.openMailbox) {
      throw new PrismError('E_CAPABILITY_MISSING', `${this.label}: the store does not implement mailbox`);
    }
    this.box = await store.openMailbox(this.pattern, { indexedHeaders: this.settings.indexedHeaders });
    const consumer = new ConsumerRunner(
      this.namespace,
      this.pattern,
      this.slots,
      {
        topic: this.settings.topic,
        group: mailboxGroup(this.pattern),
        maxRetries: Number.MAX_SAFE_INTEGER,
        ackTimeoutMs: this.options.ackTimeoutMs ?? 30_000,
      },
      {
        logger: this.logger,
        ...(this.options.delivery !== undefined ? { delivery: this.options.delivery } : {}),
      },
    );
    await consumer.start();
    this.ingest = await consumer.subscribe({}, (delivery) => this.store(delivery));
    this.startSweeper();
  }

  protected override async onStopping(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    await this.ingest?.close();
    this.ingest = undefined;
    // Deliveries already queued are stored and acknowledged before the store closes.
    while (this.flushing) await this.flushing;
    await this.sweeping;
    this.watchers.endAll();
  }

  /**
   * Queues one delivery for the next insert batch and returns, so the source hands over the next
   * message meanwhile (group commit: one transaction for what arrived while the previous one
   * ran). Waits while MAX_PENDING deliveries are queued, which is the backpressure on the source.
   */
  private async store(delivery: ConsumerDelivery): Promise<void> {
    const record = toRecord(delivery.envelope, Date.now(), this.settings.maxMessageSize);
    this.pending.push({ record, delivery });
    const flushing = (this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
    }));
    if (this.pending.length >= MAX_PENDING) await flushing;
  }

  /** Inserts what is queued, batch after batch; acknowledges each delivery after its batch committed. */
  private async flush(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_BATCH);
      let seqs: Array<number | undefined>;
      try {
        seqs = await this.box!.insert(batch.map((b) => b.record));
      } catch (err) {
        this.logger.warn(
          { namespace: this.namespace, pattern: this.pattern, messages: batch.length, err: String(err) },
          'mailbox store did not take the messages; they will be redelivered',
        );
        await sleep(this.options.retryDelayMs ?? 1_000);
        const reason = `mailbox store failed: ${err instanceof Error ? err.message : String(err)}`;
        await Promise.allSettled(batch.map((b) => b.delivery.nack(reason)));
        continue;
      }
      batch.forEach(({ record }, i) => {
        const seq = seqs[i];
        if (seq !== undefined) this.watchers.offer(record, () => toMessage({ ...record, seq }));
      });
      const acks = await Promise.allSettled(batch.map((b) => b.delivery.ack()));
      const failed = acks.filter((a) => a.status === 'rejected').length;
      if (failed > 0) {
        // Stored: a redelivery of these finds the row and is acknowledged then.
        this.logger.warn(
          { namespace: this.namespace, pattern: this.pattern, failed },
          'mailbox acknowledgements failed',
        );
      }
    }
  }

  // -- retention --------------------------------------------------------------------------------

  private startSweeper(): void {
    const { retentionMs, maxMessages } = this.settings;
    if (!Number.isFinite(retentionMs) && maxMessages === undefined) return;
    const interval =
      this.options.sweepIntervalMs ??
      (Number.isFinite(retentionMs) ? Math.min(60_000, Math.max(1_000, retentionMs / 4)) : 60_000);
    this.sweeper = setInterval(() => {
      this.sweeping ??= this.sweep().finally(() => {
        this.sweeping = undefined;
      });
    }, interval);
    this.sweeper.unref();
  }

  private async sweep(): Promise<void> {
    const { retentionMs, maxMessages } = this.settings;
    try {
      const deleted = await this.box!.prune({
        ...(Number.isFinite(retentionMs) ? { beforeMs: Date.now() - retentionMs } : {}),
        ...(maxMessages !== undefined ? { keepNewest: maxMessages } : {}),
      });
      if (deleted > 0) {
        this.logger.info({ namespace: this.namespace, pattern: this.pattern, deleted }, 'mailbox retention');
      }
    } catch (err) {
      // Retried on the next tick; queries may see expired messages meanwhile.
      this.logger.warn(
        { namespace: this.namespace, pattern: this.pattern, err: String(err) },
        'mailbox retention failed',
      );
    }
  }

  // -- calls ------------------------------------------------------------------------------------

  query(query: MailboxQuery): Promise<{ messages: MailboxMessage[]; nextPageToken: string }> {
    return this.track(async () => {
      const page = await this.box!.query(query.filter, {
        order: query.order,
        limit: query.limit,
        ...(query.pageToken ? { cursor: query.pageToken } : {}),
      });
      return { messages: page.records.map(toMessage), nextPageToken: page.cursor ?? '' };
    });
  }

  get(messageId: string): Promise<MailboxMessage> {
    return this.track(async () => {
      if (messageId === '') throw new PrismError('E_INVALID_ARGUMENT', 'message_id is required');
      const { records } = await this.box!.query({ messageIds: [messageId] }, { order: 'newest', limit: 1 });
      const record = records[0];
      if (!record) {
        throw new PrismError('E_NOT_FOUND', `${this.label} holds no message ${JSON.stringify(messageId)}`, {
          hint: 'it was never received, or was deleted or expired',
        });
      }
      return toMessage(record);
    });
  }

  delete(target: { messageIds: readonly string[] } | { filter: MailboxFilter }): Promise<number> {
    return this.track(async () => {
      if ('messageIds' in target) {
        if (target.messageIds.length === 0) return 0;
        return this.box!.delete({ messageIds: target.messageIds });
      }
      return this.box!.delete(target.filter);
    });
  }

  watch(filter: MailboxFilter, onMessage: (message: MailboxMessage) => void, onEnd: () => void): () => void {
    if (!this.running) {
      throw new PrismError('E_UNAVAILABLE', `${this.label} is not running`);
    }
    checkFilter(filter, new Set(this.settings.indexedHeaders));
    return this.watchers.add({ filter, send: onMessage, end: onEnd });
  }
}
