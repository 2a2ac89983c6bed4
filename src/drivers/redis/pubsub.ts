/**
 * Redis pub/sub (capability `pubsub` only: Redis pub/sub keeps nothing, so no queue).
 *
 * Channel: `prism:<namespace>:<topic>`; Redis channel names are binary-safe, so the topic is used
 * as given.
 *
 * Frame: Redis pub/sub has no headers, so each message is published as one frame:
 *   "PRM1" | uint32 BE length of the headers JSON | headers JSON (UTF-8) | payload bytes
 * A plain Redis subscriber therefore sees the frame, not the raw payload; that is the price of
 * carrying headers on a transport that has none.
 *
 * Two connections: commands and publishes on one, SUBSCRIBE on another (a subscribed Redis
 * connection accepts nothing else). Publishes fail fast with BackendDownError while the command
 * connection is down (no offline queue); both connections reconnect by themselves and ioredis
 * re-subscribes the channels. Messages published while a subscriber is disconnected are lost:
 * pub/sub is at-most-once by nature.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Capability } from '../../config/registry.js';
import {
  BackendDownError,
  type Driver,
  type DriverOptions,
  type Message,
  type PubSub,
  type Subscription,
} from '../interfaces.js';
import {
  copyHeaders,
  DEFAULT_OPERATION_TIMEOUT_MS,
  SerialDispatcher,
  withDeadline,
} from '../messaging-support.js';
import { messagingClientOptions } from './messaging-client.js';

const MAGIC = Buffer.from('PRM1', 'latin1');

export function encodeFrame(message: Pick<Message, 'payload' | 'headers'>): Buffer {
  const headers = Buffer.from(JSON.stringify(copyHeaders(message.headers)), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(headers.length);
  return Buffer.concat([MAGIC, length, headers, message.payload]);
}

export function decodeFrame(frame: Buffer): { payload: Uint8Array; headers: Record<string, string> } {
  if (frame.length < 8 || !frame.subarray(0, 4).equals(MAGIC)) {
    // Published by a plain Redis client: the whole frame is the payload.
    return { payload: new Uint8Array(frame), headers: {} };
  }
  const length = frame.readUInt32BE(4);
  const headers = JSON.parse(frame.subarray(8, 8 + length).toString('utf8')) as Record<string, string>;
  return { payload: new Uint8Array(frame.subarray(8 + length)), headers };
}

export type RedisPubSub = Driver & PubSub;

export function createRedisPubSub(options: DriverOptions): RedisPubSub {
  const capabilities: ReadonlySet<Capability> = new Set<Capability>(['pubsub']);
  const prefix = `prism:${options.namespace}:`;
  const base: RedisOptions = messagingClientOptions(options);
  const publisher = new Redis(options.endpoint, base);
  // The subscriber keeps an offline queue so SUBSCRIBE issued during a reconnect is sent later.
  const subscriber = new Redis(options.endpoint, { ...base, enableOfflineQueue: true });
  let lastError: unknown;
  publisher.on('error', (err: unknown) => (lastError = err));
  subscriber.on('error', (err: unknown) => (lastError = err));

  const handlers = new Map<string, Set<SerialDispatcher<Message>>>();
  /** SUBSCRIBE in progress or done, per channel, so a second subscriber waits for the first. */
  const subscribed = new Map<string, Promise<void>>();
  subscriber.on('messageBuffer', (channel: Buffer, frame: Buffer) => {
    const name = channel.toString('utf8');
    const set = handlers.get(name);
    if (!set) return;
    const { payload, headers } = decodeFrame(frame);
    const topic = name.slice(prefix.length);
    for (const dispatcher of set)
      dispatcher.push({ topic, payload: Uint8Array.from(payload), headers: { ...headers } });
  });

  const down = (what: string, err: unknown) =>
    err instanceof BackendDownError ? err : new BackendDownError('redis', what, err ?? lastError);

  async function run<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(op(), DEFAULT_OPERATION_TIMEOUT_MS, 'redis', what);
    } catch (err) {
      throw down(what, err);
    }
  }

  async function start(client: Redis): Promise<void> {
    if (client.status === 'wait') await client.connect();
  }

  return {
    backend: 'redis',
    capabilities,

    async connect() {
      await run('connect', async () => {
        await Promise.all([start(publisher), start(subscriber)]);
        await publisher.ping();
      });
    },

    async health() {
      await run('PING', async () => {
        if (publisher.status !== 'ready')
          throw new BackendDownError('redis', `connection ${publisher.status}`, lastError);
        await publisher.ping();
      });
    },

    async close() {
      const subs = [...handlers.values()].flatMap((set) => [...set]);
      handlers.clear();
      await Promise.all(subs.map((d) => d.close()));
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
      publisher.disconnect();
      subscriber.disconnect();
    },

    async publish(message) {
      const frame = encodeFrame(message);
      await run('PUBLISH', async () => {
        if (publisher.status !== 'ready')
          throw new BackendDownError('redis', `connection ${publisher.status}`, lastError);
        await publisher.publish(prefix + message.topic, frame);
      });
    },

    // Pipelined PUBLISHes in one round trip.
    async publishMany(messages) {
      if (messages.length === 0) return;
      await run('PUBLISH', async () => {
        if (publisher.status !== 'ready')
          throw new BackendDownError('redis', `connection ${publisher.status}`, lastError);
        const pipeline = publisher.pipeline();
        for (const m of messages) pipeline.publish(prefix + m.topic, encodeFrame(m));
        const replies = await pipeline.exec();
        const failed = replies?.find(([err]) => err);
        if (failed?.[0]) throw failed[0];
      });
    },

    async subscribe(topic, handler) {
      const channel = prefix + topic;
      const dispatcher = new SerialDispatcher<Message>(handler);
      let set = handlers.get(channel);
      const first = !set;
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
      }
      set.add(dispatcher);
      if (first) {
        subscribed.set(
          channel,
          run('SUBSCRIBE', async () => {
            if (subscriber.status !== 'ready')
              throw new BackendDownError('redis', `connection ${subscriber.status}`, lastError);
            await subscriber.subscribe(channel);
          }),
        );
      }
      try {
        await subscribed.get(channel);
      } catch (err) {
        set.delete(dispatcher);
        if (set.size === 0) {
          handlers.delete(channel);
          subscribed.delete(channel);
        }
        throw err;
      }
      const subscription: Subscription = {
        async close() {
          const current = handlers.get(channel);
          if (current?.delete(dispatcher) && current.size === 0) {
            handlers.delete(channel);
            subscribed.delete(channel);
            await subscriber.unsubscribe(channel).catch(() => undefined);
          }
          await dispatcher.close();
        },
      };
      return subscription;
    },
  };
}
