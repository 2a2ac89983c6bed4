/**
 * Kafka driver (kafkajs 2.2.4): `pubsub` and `queue` on the same Kafka topic
 * `prism.<namespace>.<topic>` (names in ./names.ts).
 *
 * Messages: the payload is the Kafka record value, unchanged; headers are Kafka record headers
 * (UTF-8 strings); the record timestamp is the publish time in milliseconds. Produced with
 * acks=all by an idempotent producer (see `sendInTurn`). A plain Kafka consumer reads the payload
 * bytes as published.
 *
 * Partitions and ordering: topics are created on first use with `partitions` partitions
 * (default 3) by the admin client. A message with the `prism-partition-key` header uses its value
 * as the record key, so messages with one key land in one partition and keep their order;
 * messages without it all go to the topic's first partition, so they keep their order per topic
 * (what every other backend gives) at the price of parallelism: each partition is read by one
 * consumer of a group at a time, so only keyed messages spread over a group's consumers.
 *
 * Queue = consumer group `prism.<namespace>.<group>`, new groups start at the earliest retained
 * offset, offsets committed by hand. Every delivery is tracked per partition; ack marks it done
 * and commits the lowest offset that is not yet acknowledged (commits are coalesced); it resolves
 * once such a commit landed while this member owned the partition, and fails (the message comes
 * back to the group) when a rebalance gave the partition to another member first. Nack, or no
 * ack within ackTimeoutMs, seeks the partition back to the lowest offset awaiting redelivery;
 * the replay skips what was acknowledged or is still in flight and redelivers the rest with
 * attempt + 1. Attempt counts of unacknowledged messages travel in the metadata of each offset
 * commit (a consumer that stops or hands a partition over commits them), and a consumer that
 * takes a partition over reads them back, so a message redelivered after its consumer closed
 * carries attempt 2; only a consumer that dies without committing loses them (they restart at
 * 1). At-least-once: whatever was not acknowledged when a consumer stops comes back to the group.
 *
 * Pub/sub = one consumer group per subscriber (random id, no commits) positioned at the end of
 * the topic before `subscribe` resolves, so it sees every message published after that.
 *
 * Size: a record the broker refuses as larger than the topic's `max.message.bytes` (the broker's
 * `message.max.bytes`, about 1 MiB, unless set per topic; the record batch overhead counts) is
 * PayloadTooLargeError naming that limit, read from the topic's config; it is never retried.
 *
 * Down: producer requests are bounded (connection 2 s, request 5 s, 2 quick retries) and fail
 * with BackendDownError; consumers restart themselves on connection failures.
 *
 * Idle: kafkajs's request queue is patched not to poll every millisecond (request-queue-fix.ts).
 * Producing: records are encoded into one buffer each, in place of kafkajs's own (record-encoder.ts),
 * and batches checksummed eight bytes a step (crc32c.ts). Fetching: records are decoded without
 * kafkajs's per-record Long arithmetic (record-decoder.ts).
 */
import { randomUUID } from 'node:crypto';
import kafkajs, {
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type ICustomPartitioner,
  type IHeaders,
  type KafkaMessage,
  type Producer,
} from 'kafkajs';
import type { Capability } from '../../config/registry.js';
import {
  BackendDownError,
  PayloadTooLargeError,
  type Delivery,
  type Driver,
  type DriverOptions,
  type Message,
  type PubSub,
  type Queue,
  type Subscription,
} from '../interfaces.js';
import {
  copyHeaders,
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_OPERATION_TIMEOUT_MS,
  deferred,
  PARTITION_KEY_HEADER,
  sleep,
  withDeadline,
} from '../messaging-support.js';
import { subscriptionRoundRobin } from './assigner.js';
import { kafkaBrokersFrom, kafkaGroup, kafkaTopic } from './names.js';
import { fixKafkajs } from './kafkajs-fixes.js';

// Named exports kafkajs' CommonJS build does not expose to Node's ESM loader.
const { ConfigResourceTypes, PartitionAssigners, Partitioners } = kafkajs;

export { kafkaGroup, kafkaTopic } from './names.js';

export interface KafkaDriverOptions extends DriverOptions {
  kafka?: {
    /** Partitions of topics this driver creates (default 3). */
    partitions?: number;
    /** Consumer group timings; the defaults are kafkajs' (30 s / 60 s / 3 s). */
    sessionTimeoutMs?: number;
    rebalanceTimeoutMs?: number;
    heartbeatIntervalMs?: number;
    clientId?: string;
  };
}

export type KafkaDriver = Driver & PubSub & Queue;

function toKafkaHeaders(headers: Record<string, string>): IHeaders {
  return copyHeaders(headers);
}

function fromKafkaHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}

const EMPTY = new Uint8Array(0);

/** A view of the record's value (kafkajs does not reuse the fetch buffer), not a copy. */
function payloadOf(message: KafkaMessage): Uint8Array {
  const v = message.value;
  return v ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : EMPTY;
}

/**
 * Keyed messages go where Kafka's default partitioner puts them (murmur2 of the key); a message
 * without a key goes to the topic's first partition, so one publisher's messages without a key
 * keep their order per topic, as on every other backend.
 */
const topicOrderPartitioner: ICustomPartitioner = () => {
  const byKey = Partitioners.DefaultPartitioner();
  return (args) => {
    if (args.message.key !== null && args.message.key !== undefined) return byKey(args);
    let first = Number.POSITIVE_INFINITY;
    for (const p of args.partitionMetadata) if (p.partitionId < first) first = p.partitionId;
    return Number.isFinite(first) ? first : 0;
  };
};

/** The broker refused a record (batch) above the topic's max.message.bytes. */
function isMessageTooLarge(err: unknown): boolean {
  for (let e = err as { type?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (e.type === 'MESSAGE_TOO_LARGE') return true;
    const next = e as { cause?: unknown; originalError?: unknown };
    e = (next.originalError ?? next.cause) as typeof e;
  }
  return false;
}

/**
 * A partition's progress above its committed offset travels in the offset commit's metadata, so a
 * consumer that takes over the partition (after a stream was cancelled, a restart, a rebalance or
 * a proxy's death) continues from it: the attempt counts of unacknowledged offsets
 * (`prism-attempts:<offset>=<n>,...`) and the offsets acknowledged above an unacknowledged one
 * (`;acked:<offset>,...`), which the commit cannot pass yet and which must not be delivered again.
 * Kafka keeps at most offset.metadata.max.bytes (4096 by default) per partition: at most
 * MAX_PROGRESS_ENTRIES of the lowest offsets are kept.
 */
const ATTEMPTS_META = 'prism-attempts:';
const ACKED_META = ';acked:';
const MAX_PROGRESS_ENTRIES = 100;

/** Offsets from `from` on, in order, at most `limit` of them. */
function lowestFrom<T>(entries: Iterable<[bigint, T]>, from: bigint, limit: number): Array<[bigint, T]> {
  // Deliveries arrive in offset order, so the entries are nearly always in order already (this runs
  // on every commit round, over up to max_in_flight entries): sort only when they are not.
  const out: Array<[bigint, T]> = [];
  let sorted = true;
  for (const entry of entries) {
    if (entry[0] < from) continue;
    if (sorted && out.length > 0 && entry[0] < out[out.length - 1]![0]) sorted = false;
    out.push(entry);
  }
  if (!sorted) out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (out.length > limit) out.length = limit;
  return out;
}

export function encodeProgress(
  attempts: ReadonlyMap<bigint, number>,
  acked: ReadonlySet<bigint>,
  from: bigint,
): string {
  const counted = lowestFrom(attempts, from, MAX_PROGRESS_ENTRIES);
  const done = lowestFrom(
    [...acked].map((o): [bigint, true] => [o, true]),
    from,
    MAX_PROGRESS_ENTRIES - counted.length,
  );
  if (counted.length === 0 && done.length === 0) return '';
  const head = ATTEMPTS_META + counted.map(([o, n]) => `${o}=${n}`).join(',');
  return done.length === 0 ? head : `${head}${ACKED_META}${done.map(([o]) => String(o)).join(',')}`;
}

export function decodeProgress(metadata: string | null | undefined): {
  attempts: Map<bigint, number>;
  acked: Set<bigint>;
} {
  const attempts = new Map<bigint, number>();
  const acked = new Set<bigint>();
  if (!metadata?.startsWith(ATTEMPTS_META)) return { attempts, acked };
  const [counted = '', done = ''] = metadata.slice(ATTEMPTS_META.length).split(ACKED_META);
  for (const entry of counted.split(',')) {
    const match = /^(\d{1,19})=(\d{1,9})$/.exec(entry);
    if (match) attempts.set(BigInt(match[1]!), Number(match[2]));
  }
  for (const entry of done.split(',')) if (/^\d{1,19}$/.test(entry)) acked.add(BigInt(entry));
  return { attempts, acked };
}

/** Per-partition delivery bookkeeping of one queue consumer. */
interface PartitionState {
  /** Delivered, waiting for ack/nack/timeout; value = ack timer. */
  inflight: Map<bigint, NodeJS.Timeout>;
  /** Waiting to be redelivered by the replay after a seek. */
  redeliver: Set<bigint>;
  /** Acknowledged, above the committed offset. */
  acked: Set<bigint>;
  attempts: Map<bigint, number>;
  highest: bigint;
  committed: bigint;
  /** The attempts metadata sent with the last commit. */
  committedMeta: string;
  /** Offset to commit next; undefined when nothing new is to commit. */
  dirty: boolean;
  /** Acknowledgements so far; `durable` is how many of them a commit made while owned covers. */
  acks: number;
  durable: number;
  /** False once a join assigned the partition elsewhere: a commit no longer makes acks durable. */
  owned: boolean;
}

export function createKafkaDriver(options: KafkaDriverOptions): KafkaDriver {
  const capabilities: ReadonlySet<Capability> = new Set<Capability>(['pubsub', 'queue']);
  const settings = options.kafka ?? {};
  const partitions = settings.partitions ?? 3;
  fixKafkajs();
  const kafka = new Kafka({
    clientId: settings.clientId ?? `prism-${options.namespace}`,
    brokers: kafkaBrokersFrom(options.endpoint),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    requestTimeout: DEFAULT_OPERATION_TIMEOUT_MS,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
    ...(options.credentials
      ? {
          sasl: {
            mechanism: 'plain' as const,
            username: options.credentials.username,
            password: options.credentials.password,
          },
        }
      : {}),
  });
  const groupTimings = {
    ...(settings.sessionTimeoutMs ? { sessionTimeout: settings.sessionTimeoutMs } : {}),
    ...(settings.rebalanceTimeoutMs ? { rebalanceTimeout: settings.rebalanceTimeoutMs } : {}),
    ...(settings.heartbeatIntervalMs ? { heartbeatInterval: settings.heartbeatIntervalMs } : {}),
    // kafkajs heartbeats only between fetches: an idle long poll longer than the rebalance
    // timeout gets a member thrown out of its group, and its partitions replayed elsewhere.
    maxWaitTimeInMs: Math.min(5_000, Math.floor((settings.rebalanceTimeoutMs ?? 60_000) / 4)),
  };
  let producerReady: Promise<Producer> | undefined;
  let admin: Admin | undefined;
  let adminReady: Promise<Admin> | undefined;
  const topics = new Map<string, Promise<void>>();
  const limits = new Map<string, number>();
  const subscriptions = new Set<Subscription>();
  let closed = false;

  const fail = (what: string, err?: unknown) =>
    err instanceof BackendDownError ? err : new BackendDownError('kafka', what, err);

  async function run<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (closed) throw fail(`${what}: driver closed`);
    try {
      return await withDeadline(op(), DEFAULT_OPERATION_TIMEOUT_MS, 'kafka', what);
    } catch (err) {
      const name = (err as Error | undefined)?.name ?? '';
      if (isMessageTooLarge(err)) throw err; // permanent: the caller maps it, nothing retries it
      if (
        err instanceof BackendDownError ||
        /Connection|Retries|Timeout|BrokerNotFound|NonRetriable/.test(name)
      ) {
        throw fail(what, err);
      }
      throw err;
    }
  }

  function getAdmin(): Promise<Admin> {
    adminReady ??= (async () => {
      const a = kafka.admin();
      await a.connect();
      admin = a;
      return a;
    })();
    adminReady.catch(() => (adminReady = undefined));
    return adminReady;
  }

  function getProducer(): Promise<Producer> {
    producerReady ??= (async () => {
      const p = kafka.producer({
        allowAutoTopicCreation: false,
        createPartitioner: topicOrderPartitioner,
        idempotent: true,
        maxInFlightRequests: 1,
        // Bounded, unlike kafkajs' default for an idempotent producer (unlimited): a send gives up
        // within the operation deadline and sendInTurn keeps its sequences for the caller's retry.
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
      });
      await p.connect();
      return p;
    })();
    const ready = producerReady;
    ready.catch(() => {
      if (producerReady === ready) producerReady = undefined;
    });
    return ready;
  }

  /** Drops the producer: the next send connects a new one, with a new producer id. */
  async function renewProducer(): Promise<void> {
    const old = producerReady;
    producerReady = undefined;
    const p = await old?.catch(() => undefined);
    await p?.disconnect().catch(() => undefined);
  }

  /**
   * Produce requests go out one at a time, and a message is stored once even when the answer to
   * its produce request was lost (a broker killed after appending it): the producer is
   * idempotent, so the broker drops a record batch it already holds under the same producer id
   * and sequence numbers. kafkajs gives the sequence numbers of a failed send back, so the next
   * send reuses them. That is right only when it sends the same messages again: the caller's
   * retry, which the producer runner makes with the same Message objects. Any other send after a
   * failure first gets a new producer id, so the broker cannot take it for the failed one (and
   * drop it, or refuse every later send as out of order). A send that succeeded after its caller
   * had stopped waiting (the operation deadline) answers the caller's retry without sending.
   */
  let sendQueue: Promise<unknown> = Promise.resolve();
  let failedSend: readonly Message[] | undefined;
  let lateSend: readonly Message[] | undefined;
  const sameMessages = (a: readonly Message[], b: readonly Message[]) =>
    a.length === b.length && a.every((m, i) => m === b[i]);

  function sendInTurn(
    messages: readonly Message[],
    callerDeadline: number,
    send: (p: Producer) => Promise<unknown>,
  ): Promise<void> {
    const turn = sendQueue.then(async () => {
      if (Date.now() >= callerDeadline) throw fail('publish: timed out waiting for an earlier send');
      if (lateSend && sameMessages(lateSend, messages)) return;
      lateSend = undefined;
      if (failedSend && !sameMessages(failedSend, messages)) await renewProducer();
      failedSend = messages;
      await send(await getProducer());
      failedSend = undefined;
      if (Date.now() >= callerDeadline) lateSend = messages;
    });
    sendQueue = turn.catch(() => undefined);
    return turn;
  }

  /**
   * Waits until the broker serves every partition of a topic just created: createTopics returns
   * once leaders are elected, but a ListOffsets or Fetch right after may still meet "This server
   * does not host this topic-partition", which made a subscriber opened on a new topic miss
   * what was published after it resolved.
   */
  async function untilServed(a: Admin, topic: string): Promise<void> {
    const deadline = Date.now() + DEFAULT_OPERATION_TIMEOUT_MS;
    for (;;) {
      try {
        const { topics: meta } = await a.fetchTopicMetadata({ topics: [topic] });
        const parts = meta[0]?.partitions ?? [];
        if (parts.length > 0 && parts.every((p) => p.leader >= 0)) {
          const offsets = await a.fetchTopicOffsets(topic);
          if (offsets.length === parts.length) return;
        }
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      if (Date.now() > deadline) throw fail(`topic ${topic} is not served by its leaders yet`);
      await sleep(100);
    }
  }

  /**
   * Runs admin work on topics one call at a time: kafkajs' admin keeps one metadata cache, and
   * concurrent calls for different new topics refresh it over each other (a fetchTopicOffsets
   * then finds no partitions and fails inside kafkajs).
   */
  let adminQueue: Promise<unknown> = Promise.resolve();
  function withAdmin<T>(work: (a: Admin) => Promise<T>): Promise<T> {
    const next = adminQueue.then(async () => work(await getAdmin()));
    adminQueue = next.catch(() => undefined);
    return next;
  }

  function ensureTopic(topic: string): Promise<void> {
    let ready = topics.get(topic);
    if (!ready) {
      ready = withAdmin(async (a) => {
        await a.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
        await untilServed(a, topic);
      });
      ready.catch(() => topics.delete(topic));
      topics.set(topic, ready);
    }
    return ready;
  }

  /** The topic's `max.message.bytes` (the broker's `message.max.bytes` unless set per topic). */
  async function messageLimit(topic: string): Promise<number | undefined> {
    let limit = limits.get(topic);
    if (limit === undefined) {
      const a = await getAdmin();
      const { resources } = await a.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes'] }],
      });
      const value = resources[0]?.configEntries.find(
        (e) => e.configName === 'max.message.bytes',
      )?.configValue;
      limit = Number(value);
      if (!Number.isFinite(limit) || limit <= 0) return undefined;
      limits.set(topic, limit);
    }
    return limit;
  }

  async function produce(message: Message): Promise<void> {
    const topic = kafkaTopic(options.namespace, message.topic);
    const headers = toKafkaHeaders(message.headers);
    const key = message.headers[PARTITION_KEY_HEADER];
    try {
      await send(topic, message, headers, key);
    } catch (err) {
      if (!isMessageTooLarge(err)) throw err;
      let size = message.payload.byteLength + Buffer.byteLength(key ?? '');
      for (const [k, v] of Object.entries(headers))
        size += Buffer.byteLength(k) + Buffer.byteLength(String(v));
      const limit = await run('publish (read max.message.bytes)', () => messageLimit(topic)).catch(
        () => undefined,
      );
      throw new PayloadTooLargeError(
        'kafka',
        size,
        limit,
        `topic ${message.topic} (max.message.bytes, record batch overhead included)`,
        err,
      );
    }
  }

  function record(message: Message) {
    return {
      key: message.headers[PARTITION_KEY_HEADER] ?? null,
      value: Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength),
      headers: toKafkaHeaders(message.headers),
      timestamp: String(Date.now()),
    };
  }

  /** One produce request for the whole batch (a record batch per partition, in batch order). */
  async function produceMany(messages: readonly Message[]): Promise<void> {
    if (messages.length === 0) return;
    const byTopic = new Map<string, Message[]>();
    for (const m of messages) {
      const topic = kafkaTopic(options.namespace, m.topic);
      const list = byTopic.get(topic);
      if (list) list.push(m);
      else byTopic.set(topic, [m]);
    }
    try {
      const deadline = Date.now() + DEFAULT_OPERATION_TIMEOUT_MS;
      await run('publish', async () => {
        await Promise.all([...byTopic.keys()].map((topic) => ensureTopic(topic)));
        await sendInTurn(messages, deadline, (p) =>
          p.sendBatch({
            acks: -1,
            topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list.map(record) })),
          }),
        );
      });
    } catch (err) {
      if (!isMessageTooLarge(err)) throw err;
      // Name the largest message; the broker does not say which one it refused.
      const sized = messages.map((m) => {
        const r = record(m);
        let size = m.payload.byteLength + Buffer.byteLength(r.key ?? '');
        for (const [k, v] of Object.entries(r.headers))
          size += Buffer.byteLength(k) + Buffer.byteLength(String(v));
        return { m, size };
      });
      const largest = sized.reduce((a, b) => (b.size > a.size ? b : a));
      const topic = kafkaTopic(options.namespace, largest.m.topic);
      const limit = await run('publish (read max.message.bytes)', () => messageLimit(topic)).catch(
        () => undefined,
      );
      throw new PayloadTooLargeError(
        'kafka',
        largest.size,
        limit,
        `topic ${largest.m.topic} (max.message.bytes, record batch overhead included)`,
        err,
      );
    }
  }

  async function send(topic: string, message: Message, headers: IHeaders, key: string | undefined) {
    const deadline = Date.now() + DEFAULT_OPERATION_TIMEOUT_MS;
    await run('publish', async () => {
      await ensureTopic(topic);
      await sendInTurn([message], deadline, (p) =>
        p.send({
          topic,
          acks: -1,
          messages: [
            {
              key: key ?? null,
              value: Buffer.from(
                message.payload.buffer,
                message.payload.byteOffset,
                message.payload.byteLength,
              ),
              headers,
              timestamp: String(Date.now()),
            },
          ],
        }),
      );
    });
  }

  /** Connects a consumer, subscribes it and resolves after its first group join. */
  async function startConsumer(
    consumer: Consumer,
    topic: string,
    fromBeginning: boolean,
    onJoin: (assigned: number[]) => Promise<void> | void,
    eachMessage: (partition: number, message: KafkaMessage) => Promise<void>,
  ): Promise<void> {
    const joined = deferred();
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const assigned = event.payload.memberAssignment[topic] ?? [];
      void Promise.resolve(onJoin(assigned)).finally(() => joined.resolve());
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (!event.payload.restart) joined.reject(fail('consumer crashed', event.payload.error));
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => eachMessage(partition, message),
    });
    await joined.promise;
  }

  const driver: KafkaDriver = {
    backend: 'kafka',
    capabilities,

    async connect() {
      await run('connect', async () => {
        await getAdmin();
        await getProducer();
      });
    },

    async health() {
      await run('health', async () => {
        const a = await getAdmin();
        const cluster = await a.describeCluster();
        if (cluster.brokers.length === 0) throw fail('no broker in cluster metadata');
      });
    },

    async close() {
      if (closed) return;
      await Promise.allSettled([...subscriptions].map((s) => s.close()));
      closed = true;
      const p = await producerReady?.catch(() => undefined);
      await Promise.allSettled([p?.disconnect(), admin?.disconnect()]);
    },

    publish: produce,
    enqueue: produce,
    publishMany: produceMany,
    enqueueMany: produceMany,

    async subscribe(userTopic, handler) {
      const topic = kafkaTopic(options.namespace, userTopic);
      await run('subscribe', () => ensureTopic(topic));
      // The end of every partition now: the subscriber starts there, whatever the join takes.
      const ends = await run('subscribe', () => withAdmin((a) => a.fetchTopicOffsets(topic)));
      const consumer = kafka.consumer({
        groupId: kafkaGroup(options.namespace, `ps.${randomUUID()}`),
        ...groupTimings,
        allowAutoTopicCreation: false,
        retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
      });
      let stopped = false;
      let seeked = false;
      try {
        await withDeadline(
          startConsumer(
            consumer,
            topic,
            false,
            () => {
              if (seeked) return;
              seeked = true;
              for (const { partition, offset } of ends) consumer.seek({ topic, partition, offset });
            },
            async (_partition, message) => {
              if (stopped) return;
              try {
                await handler({
                  topic: userTopic,
                  payload: payloadOf(message),
                  headers: fromKafkaHeaders(message.headers),
                });
              } catch {
                // pub/sub: a failing handler loses the message.
              }
            },
          ),
          30_000,
          'kafka',
          'subscribe (group join)',
        );
      } catch (err) {
        await consumer.disconnect().catch(() => undefined);
        throw fail('subscribe', err);
      }
      const subscription: Subscription = {
        async close() {
          if (stopped) return;
          stopped = true;
          subscriptions.delete(subscription);
          await consumer.disconnect().catch(() => undefined);
        },
      };
      subscriptions.add(subscription);
      return subscription;
    },

    async consume(userTopic, group, handler, consumeOptions) {
      const ackTimeoutMs = consumeOptions?.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
      const topic = kafkaTopic(options.namespace, userTopic);
      await run('consume', () => ensureTopic(topic));
      const consumer = kafka.consumer({
        groupId: kafkaGroup(options.namespace, group),
        partitionAssigners: [subscriptionRoundRobin, PartitionAssigners.roundRobin],
        ...groupTimings,
        allowAutoTopicCreation: false,
        retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
      });
      const states = new Map<number, PartitionState>();
      let stopped = false;
      // kafkajs' commitOffsets returns without committing while its runner is not running (a
      // crash being restarted, a stop), and a commit that spans a rebalance may have gone to either
      // generation: a commit counts only when made as a member of one generation throughout.
      let member = false;
      let membership = 0;
      const leftGroup = () => {
        member = false;
        membership++;
      };
      for (const event of [consumer.events.REBALANCING, consumer.events.CRASH, consumer.events.STOP])
        consumer.on(event, leftGroup);

      const commitPoint = (s: PartitionState): bigint => {
        let low = s.highest + 1n;
        for (const o of s.inflight.keys()) if (o < low) low = o;
        for (const o of s.redeliver) if (o < low) low = o;
        return low;
      };

      // Commits are coalesced: one round commits every dirty partition; acks wait for the round
      // that started after them.
      let round: Promise<void> | undefined;
      let nextRound: Promise<void> | undefined;
      const commitRound = async () => {
        const offsets: { topic: string; partition: number; offset: string; metadata: string }[] = [];
        const covered: Array<[PartitionState, number]> = [];
        for (const [partition, s] of states) {
          if (!s.dirty) continue;
          s.dirty = false;
          const point = commitPoint(s);
          const metadata = encodeProgress(s.attempts, s.acked, point);
          if (point < s.committed || (point === s.committed && metadata === s.committedMeta)) {
            if (s.owned) s.durable = s.acks; // the last successful commit already says as much
            continue;
          }
          offsets.push({ topic, partition, offset: point.toString(), metadata });
          covered.push([s, s.acks]);
          s.committed = point;
          s.committedMeta = metadata;
          for (const o of s.acked) if (o < point) s.acked.delete(o);
        }
        if (offsets.length === 0) return;
        const generation = membership;
        try {
          if (!member) throw new Error('not a member of the group now (it is joining)');
          await consumer.commitOffsets(offsets);
          if (membership !== generation) throw new Error('the group membership changed during the commit');
          for (const [s, acks] of covered) if (s.owned && acks > s.durable) s.durable = acks;
        } catch (err) {
          // Put them back as dirty; the next round (or the next join) retries.
          for (const { partition, offset } of offsets) {
            const s = states.get(partition);
            if (s && s.committed === BigInt(offset)) {
              s.committed = BigInt(offset) - 1n;
              s.committedMeta = '';
              s.dirty = true;
            }
          }
          throw err;
        }
      };
      const commit = (): Promise<void> => {
        if (!round) {
          round = commitRound().finally(() => (round = undefined));
          return round;
        }
        nextRound ??= round
          .catch(() => undefined)
          .then(() => {
            nextRound = undefined;
            return commit();
          });
        return nextRound;
      };
      // One operation deadline per commit round, shared by the acks waiting for it (a timer per
      // ack cost more than the ack itself).
      let roundWaited: Promise<void> | undefined;
      let roundWaitedFor: Promise<void> | undefined;
      const commitForAck = (): Promise<void> => {
        const next = commit();
        if (next !== roundWaitedFor) {
          roundWaitedFor = next;
          roundWaited = run('ack (offset commit)', () => next);
          roundWaited.catch(() => undefined);
        }
        return roundWaited!;
      };

      // An ack answers OK once a commit covering it landed while this member owned the partition:
      // only then does the partition's next owner read it. A commit refused during a rebalance is
      // retried after the join (which commits first thing); if the join gave the partition to
      // another member first, or the operation deadline passes, the ack fails and the message
      // comes back to the group (at-least-once), rather than answering OK and coming back anyway.
      let joins = deferred();
      const ackCommitted = async (partition: number, state: PartitionState, ack: number) => {
        const deadline = Date.now() + DEFAULT_OPERATION_TIMEOUT_MS;
        for (;;) {
          try {
            await commitForAck();
          } catch (err) {
            if (err instanceof BackendDownError) throw err;
          }
          if (state.durable >= ack) return;
          if (!state.owned || states.get(partition) !== state || stopped || Date.now() >= deadline)
            throw fail(
              `ack (offset commit): the acknowledgement was not committed before partition ${partition} ` +
                'could move to another member of the group; the message may be delivered again',
            );
          await Promise.race([joins.promise, sleep(Math.min(250, deadline - Date.now()))]);
        }
      };

      const dropPartition = (partition: number) => {
        const s = states.get(partition);
        if (!s) return;
        for (const timer of s.inflight.values()) clearTimeout(timer);
        states.delete(partition);
      };

      const redeliver = (partition: number, s: PartitionState, offset: bigint) => {
        const timer = s.inflight.get(offset);
        if (timer === undefined || states.get(partition) !== s) return;
        clearTimeout(timer);
        s.inflight.delete(offset);
        s.redeliver.add(offset);
        let low = offset;
        for (const o of s.redeliver) if (o < low) low = o;
        if (!stopped) consumer.seek({ topic, partition, offset: low.toString() });
      };

      // Attempt counts of partitions this consumer was just assigned, from the group's commits.
      const groupId = kafkaGroup(options.namespace, group);
      const seeds = new Map<
        number,
        { committed: bigint; attempts: Map<bigint, number>; acked: Set<bigint> }
      >();
      let seedsReady: Promise<void> = Promise.resolve();
      const loadSeeds = async (assigned: number[]) => {
        const fresh = assigned.filter((p) => !states.has(p));
        if (fresh.length === 0) return;
        const [committed] = await withAdmin((a) => a.fetchOffsets({ groupId, topics: [topic] }));
        for (const { partition, offset, metadata } of committed?.partitions ?? []) {
          if (!fresh.includes(partition) || Number(offset) < 0) continue;
          seeds.set(partition, { committed: BigInt(offset), ...decodeProgress(metadata) });
        }
      };

      const onMessage = async (partition: number, message: KafkaMessage) => {
        if (stopped) return;
        const offset = BigInt(message.offset);
        let s = states.get(partition);
        if (!s) {
          await seedsReady;
          const seed = seeds.get(partition);
          seeds.delete(partition);
          s = {
            inflight: new Map(),
            redeliver: new Set(),
            acked: new Set(seed?.acked ?? []),
            attempts: new Map(seed?.attempts ?? []),
            highest: offset - 1n,
            acks: 0,
            durable: 0,
            owned: true,
            committed: offset,
            committedMeta:
              seed !== undefined && seed.committed === offset
                ? encodeProgress(seed.attempts, seed.acked, offset)
                : '',
            dirty: false,
          };
          states.set(partition, s);
        }
        const state = s;
        if (offset < state.committed || state.inflight.has(offset)) return;
        if (offset > state.highest) state.highest = offset;
        if (state.acked.has(offset)) return; // acknowledged before (here, or by the partition's last owner)
        state.redeliver.delete(offset);
        const attempt = (state.attempts.get(offset) ?? 0) + 1;
        state.attempts.set(offset, attempt);
        const timer = setTimeout(() => redeliver(partition, state, offset), ackTimeoutMs);
        timer.unref();
        state.inflight.set(offset, timer);
        const delivery: Delivery = {
          topic: userTopic,
          payload: payloadOf(message),
          headers: fromKafkaHeaders(message.headers),
          attempt,
          async ack() {
            const t = state.inflight.get(offset);
            if (t === undefined || states.get(partition) !== state) return; // timed out or rebalanced: it comes back
            clearTimeout(t);
            state.inflight.delete(offset);
            state.attempts.delete(offset);
            state.acked.add(offset);
            state.dirty = true;
            await ackCommitted(partition, state, ++state.acks);
          },
          async nack() {
            redeliver(partition, state, offset);
          },
        };
        try {
          await handler(delivery);
        } catch {
          // Unacknowledged: the ack timeout redelivers it.
        }
      };

      try {
        await withDeadline(
          startConsumer(
            consumer,
            topic,
            true,
            async (assigned) => {
              member = true;
              membership++;
              // Commit what was acknowledged before handing partitions over (the classic group
              // protocol accepts a commit for any partition with the current generation), so the
              // next owner does not replay it; kept partitions are fetched again from there too.
              for (const [partition, s] of states) {
                s.dirty = true;
                s.owned = assigned.includes(partition);
              }
              await commit().catch(() => undefined);
              for (const partition of [...states.keys()])
                if (!assigned.includes(partition)) dropPartition(partition);
              joins.resolve();
              joins = deferred();
              seedsReady = loadSeeds(assigned).catch(() => undefined); // unknown: counting starts at 1
            },
            onMessage,
          ),
          30_000,
          'kafka',
          'consume (group join)',
        );
      } catch (err) {
        await consumer.disconnect().catch(() => undefined);
        throw fail('consume', err);
      }

      const subscription: Subscription = {
        async close() {
          if (stopped) return;
          stopped = true;
          subscriptions.delete(subscription);
          // Also partitions with nothing new acknowledged: their commit carries the attempt counts.
          for (const s of states.values()) s.dirty = true;
          await commit().catch(() => undefined);
          for (const partition of [...states.keys()]) dropPartition(partition);
          await consumer.disconnect().catch(() => undefined);
        },
      };
      subscriptions.add(subscription);
      return subscription;
    },
  };
  return driver;
}
