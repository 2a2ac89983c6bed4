/**
 * In-process pub/sub and queue for memstore. Not durable: state lives as long as the process.
 *
 * Drivers created with the same endpoint (default `memory://`) share one broker, so closing a
 * driver and creating another behaves like a consumer restart against a real broker. Topics are
 * isolated per namespace.
 *
 * Queue semantics (the same as the postgres queue): a message is kept until every group that
 * knew it acknowledged it; a group consuming for the first time receives every message still
 * kept (the backlog enqueued while no group existed included). Within a group deliveries are
 * spread round-robin over its consumers, at most `prefetch` (default 64) unacknowledged per consumer.
 */
import type { Capability } from '../../config/registry.js';
import {
  BackendDownError,
  prefetchOf,
  type Delivery,
  type Driver,
  type DriverOptions,
  type Message,
  type PubSub,
  type Queue,
  type Subscription,
} from '../interfaces.js';
import { copyHeaders, DEFAULT_ACK_TIMEOUT_MS, SerialDispatcher } from '../messaging-support.js';

const PREFETCH = 64;

interface Entry {
  seq: number;
  message: Message;
  /** Groups that still have to acknowledge it. */
  pendingGroups: number;
}

interface Consumer {
  dispatcher: SerialDispatcher<Delivery>;
  ackTimeoutMs: number;
  inflight: number;
  prefetch: number;
  closed: boolean;
}

interface InFlight {
  token: number;
  timer: NodeJS.Timeout;
  consumer: Consumer;
}

interface GroupState {
  /** Entries waiting for a consumer, by sequence. */
  ready: ReadyQueue;
  inflight: Map<number, InFlight>;
  attempts: Map<number, number>;
  consumers: Consumer[];
  next: number;
}

interface TopicState {
  nextSeq: number;
  log: Map<number, Entry>;
  subscribers: Set<SerialDispatcher<Message>>;
  groups: Map<string, GroupState>;
}

interface Broker {
  topics: Map<string, TopicState>;
  tokens: number;
}

const brokers = new Map<string, Broker>();

function brokerFor(endpoint: string): Broker {
  let broker = brokers.get(endpoint);
  if (!broker) {
    broker = { topics: new Map(), tokens: 0 };
    brokers.set(endpoint, broker);
  }
  return broker;
}

function cloneMessage(message: Message): Message {
  return { topic: message.topic, payload: Uint8Array.from(message.payload), headers: { ...message.headers } };
}

/**
 * A group's waiting entries in sequence order. Taking the first is O(1): an array's `shift` moves
 * every element once the array is large, and a publisher far ahead of its consumers made each
 * delivery cost in proportion to the backlog.
 */
class ReadyQueue {
  private entries: Entry[] = [];
  private head = 0;

  get length(): number {
    return this.entries.length - this.head;
  }

  push(entry: Entry): void {
    this.entries.push(entry);
  }

  shift(): Entry | undefined {
    if (this.head === this.entries.length) return undefined;
    const entry = this.entries[this.head++];
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return entry;
  }

  /** Puts an entry back in sequence order (a redelivery). */
  insertBySeq(entry: Entry): void {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[mid]!.seq < entry.seq) lo = mid + 1;
      else hi = mid;
    }
    this.entries.splice(lo, 0, entry);
  }
}

export type MemstoreMessaging = Driver & PubSub & Queue;

export function createMemstoreMessaging(options: DriverOptions): MemstoreMessaging {
  const broker = brokerFor(options.endpoint || 'memory://');
  const capabilities: ReadonlySet<Capability> = new Set<Capability>(['pubsub', 'queue']);
  const open = new Set<Subscription>();
  let closed = false;

  function ensureOpen(what: string): void {
    if (closed) throw new BackendDownError('memstore', `${what}: driver closed`);
  }

  function topicState(topic: string): TopicState {
    const key = `${options.namespace}\u0000${topic}`;
    let state = broker.topics.get(key);
    if (!state) {
      state = { nextSeq: 1, log: new Map(), subscribers: new Set(), groups: new Map() };
      broker.topics.set(key, state);
    }
    return state;
  }

  function settle(state: TopicState, entry: Entry): void {
    entry.pendingGroups--;
    if (entry.pendingGroups <= 0) state.log.delete(entry.seq);
  }

  function pump(state: TopicState, group: GroupState): void {
    while (group.ready.length > 0) {
      const consumer = nextWithRoom(group);
      if (consumer === undefined) return;
      deliver(state, group, consumer, group.ready.shift()!);
    }
  }

  /** The group's consumers in turn, skipping those closed or at their prefetch. */
  function nextWithRoom(group: GroupState): Consumer | undefined {
    const count = group.consumers.length;
    for (let i = 0; i < count; i++) {
      const consumer = group.consumers[(group.next + i) % count]!;
      if (!consumer.closed && consumer.inflight < consumer.prefetch) {
        group.next = (group.next + i + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  function deliver(state: TopicState, group: GroupState, consumer: Consumer, entry: Entry): void {
    const attempt = (group.attempts.get(entry.seq) ?? 0) + 1;
    group.attempts.set(entry.seq, attempt);
    const token = ++broker.tokens;
    const current = () => group.inflight.get(entry.seq)?.token === token;
    const release = (requeue: boolean) => {
      const flight = group.inflight.get(entry.seq)!;
      clearTimeout(flight.timer);
      group.inflight.delete(entry.seq);
      flight.consumer.inflight--;
      if (requeue) {
        group.ready.insertBySeq(entry);
      } else {
        group.attempts.delete(entry.seq);
        settle(state, entry);
      }
      pump(state, group);
    };
    const timer = setTimeout(() => {
      if (current()) release(true);
    }, consumer.ackTimeoutMs);
    timer.unref();
    group.inflight.set(entry.seq, { token, timer, consumer });
    consumer.inflight++;
    const copy = cloneMessage(entry.message);
    consumer.dispatcher.push({
      ...copy,
      attempt,
      async ack() {
        if (current()) release(false);
      },
      async nack() {
        if (current()) release(true);
      },
    });
  }

  const driver: MemstoreMessaging = {
    backend: 'memstore',
    capabilities,

    async connect() {
      ensureOpen('connect');
    },

    async health() {
      ensureOpen('health');
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...open].map((s) => s.close()));
    },

    async publish(message) {
      ensureOpen('publish');
      const copy = cloneMessage({ ...message, headers: copyHeaders(message.headers) });
      for (const subscriber of topicState(message.topic).subscribers) subscriber.push(cloneMessage(copy));
    },

    async publishMany(messages) {
      for (const message of messages) await driver.publish(message);
    },

    async subscribe(topic, handler) {
      ensureOpen('subscribe');
      const state = topicState(topic);
      const dispatcher = new SerialDispatcher<Message>(handler);
      state.subscribers.add(dispatcher);
      const subscription: Subscription = {
        async close() {
          state.subscribers.delete(dispatcher);
          open.delete(subscription);
          await dispatcher.close();
        },
      };
      open.add(subscription);
      return subscription;
    },

    async enqueue(message) {
      ensureOpen('enqueue');
      const state = topicState(message.topic);
      const entry: Entry = {
        seq: state.nextSeq++,
        message: cloneMessage({ ...message, headers: copyHeaders(message.headers) }),
        pendingGroups: state.groups.size,
      };
      state.log.set(entry.seq, entry);
      for (const group of state.groups.values()) {
        group.ready.push(entry);
        pump(state, group);
      }
    },

    async enqueueMany(messages) {
      for (const message of messages) await driver.enqueue(message);
    },

    async consume(topic, groupName, handler, consumeOptions) {
      ensureOpen('consume');
      const state = topicState(topic);
      let group = state.groups.get(groupName);
      if (!group) {
        group = { ready: new ReadyQueue(), inflight: new Map(), attempts: new Map(), consumers: [], next: 0 };
        for (const entry of [...state.log.values()].sort((a, b) => a.seq - b.seq)) {
          entry.pendingGroups++;
          group.ready.push(entry);
        }
        state.groups.set(groupName, group);
      }
      const g = group;
      const consumer: Consumer = {
        dispatcher: new SerialDispatcher<Delivery>(handler),
        ackTimeoutMs: consumeOptions?.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS,
        inflight: 0,
        prefetch: prefetchOf(consumeOptions, PREFETCH),
        closed: false,
      };
      g.consumers.push(consumer);
      const subscription: Subscription = {
        async close() {
          if (consumer.closed) return;
          consumer.closed = true;
          open.delete(subscription);
          g.consumers = g.consumers.filter((c) => c !== consumer);
          // Whatever this consumer held and did not acknowledge goes back to the group now.
          for (const [seq, flight] of [...g.inflight]) {
            if (flight.consumer !== consumer) continue;
            clearTimeout(flight.timer);
            g.inflight.delete(seq);
            const entry = state.log.get(seq);
            if (entry) g.ready.insertBySeq(entry);
          }
          await consumer.dispatcher.close();
          pump(state, g);
        },
      };
      open.add(subscription);
      queueMicrotask(() => pump(state, g));
      return subscription;
    },
  };
  return driver;
}
