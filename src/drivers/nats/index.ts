/**
 * NATS driver: `pubsub` over core NATS, `queue` over JetStream (names in ./names.ts), with the
 * maintained v3 clients `@nats-io/transport-node` and `@nats-io/jetstream`.
 *
 * - Headers travel as NATS headers and the payload as the raw message data, so a plain NATS
 *   subscriber reads the payload unchanged. NATS constrains headers: keys are printable ASCII
 *   without ':' and values carry no CR/LF and no leading or trailing blanks. Headers named
 *   `Nats-*` are the server's (e.g. `Nats-Msg-Id`) and are not handed to handlers.
 * - Queue: one stream per namespace (file storage, limits retention: a new group reads every
 *   message the stream still keeps), one durable pull consumer per (group, topic) with explicit
 *   ack, `ack_wait` = ackTimeoutMs, unlimited redeliveries; nack asks for redelivery at once;
 *   `attempt` is JetStream's delivery count. An enqueue carrying the `prism-message-id` header is
 *   published with msgID `<topic>/<id>`, so the stream drops a duplicate on the same topic within
 *   its 2-minute window; the same id on another topic (a dead letter keeps its id) is kept.
 *   Acks wait for the server's confirmation (`ackAck`), so an acknowledged message is really
 *   acknowledged; acks issued together are plain acks confirmed by one `ackAck` on the last.
 * - Size: a message (payload plus headers) above the server's `max_payload` (from its INFO;
 *   1 MiB by default) is refused with PayloadTooLargeError before anything is sent. Errors another
 *   attempt cannot fix (bad arguments, permissions, JetStream API errors) are passed on as they
 *   are, never as BackendDownError, so nothing retries them.
 * - Down: while the connection is down, publish/enqueue/ack fail at once with BackendDownError;
 *   the client reconnects forever by itself and pull consumers resume.
 */
import {
  connect as natsConnect,
  headers as natsHeaders,
  nanos,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { Capability } from '../../config/registry.js';
import { PrismError } from '../../errors.js';
import {
  BackendDownError,
  prefetchOf,
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
  Coalescer,
  copyHeaders,
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_OPERATION_TIMEOUT_MS,
  MESSAGE_ID_HEADER,
  withDeadline,
} from '../messaging-support.js';
import { durableName, pubsubSubject, queueSubject, streamName, streamSubjects } from './names.js';

export { durableName, pubsubSubject, queueSubject, streamName } from './names.js';

/** Messages a pull consumer asks for at once. */
const PULL_BATCH = 32;
/** Pull request lifetime; heartbeats come every half of it, so a dead server is noticed in ~2 s. */
const PULL_EXPIRES_MS = 2_000;
const DUPLICATE_WINDOW_MS = 120_000;
/** JetStream publishes of one batch awaiting their ack at once. */
const PUBLISH_WINDOW = 256;

export type NatsDriver = Driver & PubSub & Queue;

function toNatsHeaders(headers: Record<string, string>): MsgHdrs | undefined {
  const entries = Object.entries(copyHeaders(headers));
  if (entries.length === 0) return undefined;
  const h = natsHeaders();
  for (const [k, v] of entries) h.set(k, v);
  return h;
}

/** Bytes the headers take on the wire (`NATS/1.0`, one `key: value` line each, a blank line). */
function headerBytes(headers: Record<string, string>): number {
  const entries = Object.entries(headers);
  if (entries.length === 0) return 0;
  let size = 'NATS/1.0\r\n\r\n'.length;
  for (const [k, v] of entries) size += Buffer.byteLength(k) + Buffer.byteLength(v) + 4;
  return size;
}

function fromNatsHeaders(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const [k, values] of h) {
    if (/^nats-/i.test(k)) continue;
    out[k] = values.join(',');
  }
  return out;
}

/**
 * Errors that another attempt cannot fix (a refused argument, a permission, a JetStream API error
 * other than "unavailable"): passed on as they are, never reported as the backend being down.
 */
function isPermanent(err: unknown): boolean {
  if (err instanceof BackendDownError) return false;
  if (err instanceof PrismError) return true;
  const name = (err as Error | undefined)?.name ?? '';
  if (/^(InvalidArgument|InvalidSubject|InvalidOperation|PermissionViolation|Authorization)Error$/.test(name))
    return true;
  if (name === 'JetStreamApiError') return (err as { code?: unknown }).code !== 503;
  return false;
}

export function createNatsDriver(options: DriverOptions): NatsDriver {
  const capabilities: ReadonlySet<Capability> = new Set<Capability>(['pubsub', 'queue']);
  const stream = streamName(options.namespace);
  let nc: NatsConnection | undefined;
  let connecting: Promise<NatsConnection> | undefined;
  let js: JetStreamClient | undefined;
  let jsm: JetStreamManager | undefined;
  let down = false;
  let closed = false;
  let streamReady: Promise<void> | undefined;
  const subscriptions = new Set<Subscription>();

  const fail = (what: string, err?: unknown) =>
    err instanceof BackendDownError ? err : new BackendDownError('nats', what, err);

  async function run<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(op(), DEFAULT_OPERATION_TIMEOUT_MS, 'nats', what);
    } catch (err) {
      if (isPermanent(err)) throw err;
      throw fail(what, err);
    }
  }

  /** The server's max_payload (payload plus headers), from its INFO; undefined before connecting. */
  function maxPayload(conn: NatsConnection): number | undefined {
    const max = conn.info?.max_payload;
    return typeof max === 'number' && max > 0 ? max : undefined;
  }

  /** PayloadTooLargeError before anything is sent, so the client's own check never fires. */
  function checkSize(
    conn: NatsConnection,
    topic: string,
    payload: Uint8Array,
    headers: Record<string, string>,
  ) {
    const max = maxPayload(conn);
    const size = payload.byteLength + headerBytes(headers);
    if (max !== undefined && size > max) {
      throw new PayloadTooLargeError('nats', size, max, `topic ${topic} (server max_payload)`);
    }
  }

  function connection(): Promise<NatsConnection> {
    if (closed) return Promise.reject(fail('driver closed'));
    if (nc && !nc.isClosed()) return Promise.resolve(nc);
    connecting ??= (async () => {
      const url = new URL(options.endpoint.replace(/^nats:\/\//, 'nats://'));
      const conn = await natsConnect({
        servers: options.endpoint,
        name: `prism-${options.namespace}`,
        timeout: 2_000,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        // No Error (with its stack) allocated per request: ~10% of the CPU of a busy stream.
        noAsyncTraces: true,
        pingInterval: 5_000,
        ...(options.credentials
          ? { user: options.credentials.username, pass: options.credentials.password }
          : url.username
            ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
            : {}),
      });
      down = false;
      void (async () => {
        for await (const s of conn.status()) {
          if (s.type === 'disconnect') down = true;
          else if (s.type === 'reconnect') down = false;
        }
      })();
      nc = conn;
      js = jetstream(conn, { timeout: DEFAULT_OPERATION_TIMEOUT_MS });
      jsm = await jetstreamManager(conn, { timeout: DEFAULT_OPERATION_TIMEOUT_MS });
      return conn;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  async function live(what: string): Promise<NatsConnection> {
    const conn = await connection();
    if (down || conn.isClosed()) throw fail(`${what}: not connected`);
    return conn;
  }

  function ensureStream(): Promise<void> {
    streamReady ??= (async () => {
      const config = {
        name: stream,
        subjects: [streamSubjects(options.namespace)],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      };
      try {
        await jsm!.streams.add(config);
      } catch (err) {
        // Already there (possibly with other limits set by an operator): use it as it is.
        await jsm!.streams.info(stream).catch(() => {
          throw err;
        });
      }
    })();
    streamReady.catch(() => (streamReady = undefined));
    return streamReady;
  }

  async function ensureConsumer(topic: string, group: string, ackTimeoutMs: number): Promise<string> {
    const durable = durableName(group, topic);
    const config = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ackTimeoutMs),
      deliver_policy: DeliverPolicy.All,
      filter_subject: queueSubject(options.namespace, topic),
      max_deliver: -1,
      max_ack_pending: 1_000,
    };
    try {
      await jsm!.consumers.add(stream, config);
    } catch {
      // Exists with other settings (e.g. another ackTimeoutMs): update what may change.
      await jsm!.consumers.update(stream, durable, { ack_wait: config.ack_wait, max_ack_pending: 1_000 });
    }
    return durable;
  }

  /** The stream holds every topic of the namespace: de-duplication is scoped to the topic. */
  function msgIdOf(message: Message): string | undefined {
    const id = message.headers[MESSAGE_ID_HEADER];
    return id ? `${message.topic}/${id}` : undefined;
  }

  function wireHeaders(message: Message): Record<string, string> {
    const msgID = msgIdOf(message);
    return msgID ? { ...message.headers, 'Nats-Msg-Id': msgID } : message.headers;
  }

  /** Publishes one message to the stream; resolves on the stream's ack. */
  async function jsPublish(conn: NatsConnection, message: Message, check = true): Promise<void> {
    if (check) checkSize(conn, message.topic, message.payload, wireHeaders(message));
    const h = toNatsHeaders(message.headers);
    const msgID = msgIdOf(message);
    await js!.publish(queueSubject(options.namespace, message.topic), message.payload, {
      ...(h ? { headers: h } : {}),
      ...(msgID ? { msgID } : {}),
      timeout: DEFAULT_OPERATION_TIMEOUT_MS,
    });
  }

  /**
   * Acks of one subscription issued in one turn of the event loop: plain acks, then one ackAck on
   * the last. The server hands one connection's acks to the consumer in order, so the last one's
   * confirmation confirms the batch, for one round trip instead of one per message.
   */
  function ackBatcher(): Coalescer<JsMsg> {
    return new Coalescer<JsMsg>(async (msgs) => {
      await live('ack');
      for (const m of msgs.slice(0, -1)) m.ack();
      const last = msgs[msgs.length - 1]!;
      const confirmed = await run('ack', () => last.ackAck({ timeout: DEFAULT_OPERATION_TIMEOUT_MS }));
      if (!confirmed) throw fail('ack was not confirmed');
    });
  }

  function delivery(topic: string, m: JsMsg, acks: Coalescer<JsMsg>): Delivery {
    // JetStream answers a second ack of one message with an error; the contract says the second
    // is harmless, so a delivery remembers its settled ack (a failed one may be tried again).
    let acked: Promise<void> | undefined;
    const ackOnce = (): Promise<void> => acks.add(m);
    return {
      topic,
      payload: m.data,
      headers: fromNatsHeaders(m.headers),
      attempt: m.info.deliveryCount,
      ack() {
        acked ??= ackOnce().catch((err: unknown) => {
          acked = undefined;
          throw err;
        });
        return acked;
      },
      async nack() {
        if (acked) return;
        await live('nack');
        m.nak();
      },
    };
  }

  return {
    backend: 'nats',
    capabilities,

    async connect() {
      await run('connect', async () => {
        await connection();
      });
    },

    async health() {
      await run('health', async () => {
        const conn = await live('health');
        await conn.flush();
      });
    },

    async close() {
      if (closed) return;
      await Promise.allSettled([...subscriptions].map((s) => s.close()));
      closed = true;
      const conn = nc ?? (await connecting?.catch(() => undefined));
      if (conn && !conn.isClosed()) await conn.close().catch(() => undefined);
    },

    async publish(message) {
      const h = toNatsHeaders(message.headers);
      const conn = await run('publish', () => live('publish'));
      checkSize(conn, message.topic, message.payload, message.headers);
      try {
        conn.publish(
          pubsubSubject(options.namespace, message.topic),
          message.payload,
          h ? { headers: h } : {},
        );
      } catch (err) {
        throw fail('publish', err);
      }
    },

    async publishMany(messages) {
      if (messages.length === 0) return;
      const conn = await run('publish', () => live('publish'));
      for (const m of messages) checkSize(conn, m.topic, m.payload, m.headers);
      try {
        for (const m of messages) {
          const h = toNatsHeaders(m.headers);
          conn.publish(pubsubSubject(options.namespace, m.topic), m.payload, h ? { headers: h } : {});
        }
      } catch (err) {
        throw fail('publish', err);
      }
    },

    async subscribe(topic, handler) {
      const conn = await run('subscribe', () => live('subscribe'));
      const sub = conn.subscribe(pubsubSubject(options.namespace, topic));
      let stopped = false;
      const loop = (async () => {
        for await (const m of sub as AsyncIterable<Msg>) {
          if (stopped) break;
          try {
            await handler({ topic, payload: m.data, headers: fromNatsHeaders(m.headers) });
          } catch {
            // pub/sub is at-most-once: a failing handler loses the message.
          }
        }
      })();
      await run('subscribe', () => conn.flush()); // the server knows the interest from here on
      const subscription: Subscription = {
        async close() {
          if (stopped) return;
          stopped = true;
          subscriptions.delete(subscription);
          if (!sub.isClosed()) sub.unsubscribe();
          await loop;
        },
      };
      subscriptions.add(subscription);
      return subscription;
    },

    async enqueue(message) {
      await run('enqueue', async () => {
        const conn = await live('enqueue');
        await ensureStream();
        await jsPublish(conn, message);
      });
    },

    // JetStream async publish: the batch's publishes go out back to back on the one connection
    // (so the stream stores them in order), with at most PUBLISH_WINDOW awaiting their ack.
    async enqueueMany(messages) {
      if (messages.length === 0) return;
      await run('enqueue', async () => {
        const conn = await live('enqueue');
        for (const m of messages) checkSize(conn, m.topic, m.payload, wireHeaders(m));
        await ensureStream();
        const acks: Array<Promise<unknown>> = [];
        for (const [i, m] of messages.entries()) {
          if (i >= PUBLISH_WINDOW) await acks[i - PUBLISH_WINDOW];
          const ack = jsPublish(conn, m, false);
          ack.catch(() => undefined);
          acks.push(ack);
        }
        await Promise.all(acks);
      });
    },

    async consume(topic, group, handler, consumeOptions) {
      const ackTimeoutMs = consumeOptions?.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
      const acks = ackBatcher();
      const messages = await run('consume', async () => {
        await live('consume');
        await ensureStream();
        const durable = await ensureConsumer(topic, group, ackTimeoutMs);
        const consumer = await js!.consumers.get(stream, durable);
        return consumer.consume({
          max_messages: prefetchOf(consumeOptions, PULL_BATCH),
          expires: PULL_EXPIRES_MS,
        });
      });
      let stopped = false;
      const loop = (async () => {
        for await (const m of messages) {
          if (stopped) {
            m.nak(); // prefetched but never handed out: give it back at once
            continue;
          }
          try {
            await handler(delivery(topic, m, acks));
          } catch {
            // Left unacknowledged: JetStream redelivers it after ack_wait.
          }
        }
      })();
      const subscription: Subscription = {
        async close() {
          if (stopped) return;
          stopped = true;
          subscriptions.delete(subscription);
          await messages.close().catch(() => undefined);
          await loop;
        },
      };
      subscriptions.add(subscription);
      return subscription;
    },
  };
}
