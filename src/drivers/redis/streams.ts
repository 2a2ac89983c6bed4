/**
 * Redis Streams (capability `queue`): durable, at-least-once delivery to consumer groups.
 *
 * - Stream key: `prism/stream:<namespace>:<topic>`. A namespace never contains `/` or `:`, so no
 *   key of the keyvalue part (`<namespace>:<key>`) and no other namespace's stream can collide.
 * - Entry: field `payload` (the bytes as given) and field `headers` (a JSON object of strings),
 *   so a plain `XREAD` client reads the payload unchanged.
 * - Groups: `consume` creates the group with `XGROUP CREATE … 0 MKSTREAM`, so a new group reads
 *   every message the stream still keeps, including those enqueued before any member existed.
 *   Each `consume` call is one member (a consumer name unique to the call) reading with
 *   `XREADGROUP … >` on a connection of its own; members of a group share its messages, and
 *   different groups each get all of them.
 * - Redelivery: a member claims, with `XAUTOCLAIM`, what any member of its group has held
 *   unacknowledged for `ackTimeoutMs` (a dead member, a slow handler, or a nack: a nack makes the
 *   entry claimable at once). `attempt` is the entry's delivery count from `XPENDING`: 1 on the
 *   first delivery, incremented by every claim. Closing a subscription hands its unacknowledged
 *   deliveries back the same way, so another member gets them within one claim interval.
 * - Ack is `XACK` (acks of one turn of the event loop share one); acknowledging twice, or after
 *   the entry went to another member, is harmless.
 * - Members: a closing member deletes its name from the group when it holds nothing; one that
 *   still held entries is deleted by another member once those were claimed and it has been
 *   idle for `staleMemberMs`, so closed subscriptions do not pile up in `XINFO CONSUMERS`.
 * - De-duplication: an enqueue carrying the `prism-message-id` header appends only if that id was
 *   not appended to the topic within the last DEDUP_WINDOW_MS (a marker key
 *   `prism/stream:<namespace>:<topic>:dedup:<id>`, set NX with that expiry, and the XADD in one
 *   script), so a batch retried after its reply was lost (Redis restarted after EXEC, or ioredis
 *   resending unanswered commands on reconnect) is not appended twice. Topics contain no `:`, so
 *   a marker never collides with a stream key, and it falls under the namespace's key pattern.
 * - Retention: with `retentionMs`, every enqueue trims entries older than that (`XADD … MINID =`,
 *   exact, from the entry ids' millisecond part): retention wins over delivery, so an entry
 *   trimmed while unacknowledged is never redelivered. Without it the stream keeps everything.
 * - Down: enqueue, ack and nack fail at once with BackendDownError while the command connection
 *   is down (no offline queue); members keep retrying their reads and resume when Redis is back,
 *   recreating their group when Redis lost it.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import type { Capability } from '../../config/registry.js';
import {
  BackendDownError,
  prefetchOf,
  type Delivery,
  type Driver,
  type ConsumeOptions,
  type DriverOptions,
  type Message,
  type Queue,
  type Subscription,
} from '../interfaces.js';
import {
  Coalescer,
  copyHeaders,
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_OPERATION_TIMEOUT_MS,
  MESSAGE_ID_HEADER,
  sleep,
  withDeadline,
} from '../messaging-support.js';
import { messagingClientOptions } from './messaging-client.js';

/** Entries one read or one claim takes at most. */
const BATCH = 64;
/** Pause after a failed read before the member tries again. */
const RETRY_PAUSE_MS = 250;

const PAYLOAD = 'payload';
const HEADERS = 'headers';

/** The Redis key of a namespace's topic. */
export function streamKey(namespace: string, topic: string): string {
  return `prism/stream:${namespace}:${topic}`;
}

/**
 * How often a member looks for entries to claim (and how long one blocking read waits): a quarter
 * of the ack timeout, between 50 ms and 1 s, so redelivery comes at most that late.
 */
export function claimIntervalMs(ackTimeoutMs: number): number {
  return Math.min(1_000, Math.max(50, Math.floor(ackTimeoutMs / 4)));
}

/**
 * Hands a delivery back: when this member still holds the entry at the attempt it delivered, sets
 * its idle time to the ack timeout (keeping the delivery count), so the next `XAUTOCLAIM` of any
 * member takes it. A stale nack (the entry was acknowledged or claimed since) changes nothing.
 */
/**
 * How long an appended message id is remembered for de-duplication: longer than a producer's
 * retries of one batch (a few seconds of backoff) and a reconnect, like JetStream's 2-minute window.
 */
export const DEDUP_WINDOW_MS = 120_000;

/**
 * Appends one entry unless its id was appended within the window. KEYS: stream, marker. ARGV:
 * window ms, MINID ('' = no trimming), then the entry's field/value pairs. Returns 1 if appended.
 */
const APPEND_ONCE_SCRIPT = `
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
if ARGV[2] == '' then
  redis.call('XADD', KEYS[1], '*', ARGV[3], ARGV[4], ARGV[5], ARGV[6])
else
  redis.call('XADD', KEYS[1], 'MINID', '=', ARGV[2], '*', ARGV[3], ARGV[4], ARGV[5], ARGV[6])
end
return 1
`;

type AppendOnce = (
  stream: string,
  marker: string,
  windowMs: number,
  minId: string,
  ...fields: Array<string | Buffer>
) => Promise<number>;

const RELEASE_SCRIPT = `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 or tonumber(p[1][4]) ~= tonumber(ARGV[4]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[5], 'JUSTID')
return 1
`;

type Release = (
  key: string,
  group: string,
  consumer: string,
  id: string,
  attempt: number,
  idleMs: number,
) => Promise<number>;

export interface RedisStreamsOptions extends DriverOptions {
  /** Extra ioredis options (tests, benchmarks). */
  client?: RedisOptions;
  /**
   * A group member that holds nothing and has not read for this long is deleted from the group
   * by the other members (a closed subscription whose held entries were claimed since). Default
   * 10 minutes; a live member reads at least once a second.
   */
  staleMemberMs?: number;
}

/** Default of `staleMemberMs`. */
export const STALE_MEMBER_MS = 10 * 60_000;

export type RedisStreams = Driver & Queue;

/** One stream entry as Redis returns it with Buffer replies: [id, [field, value, ...]]. */
type RawEntry = [Buffer, Buffer[] | null];

function field(fields: Buffer[], name: string): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i]!.toString('latin1') === name) return fields[i + 1];
  }
  return undefined;
}

function decodeHeaders(raw: Buffer | undefined): Record<string, string> {
  if (raw === undefined || raw.length === 0) return {};
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') out[k] = v;
    return out;
  } catch {
    // Written by a plain client with something else in `headers`: no headers.
    return {};
  }
}

/**
 * ioredis has a Buffer-reply variant of every command, but types only some of them (and its
 * `callBuffer` loses the command name under auto-pipelining, ioredis 5.x).
 */
function buffers(client: Redis): {
  xautoclaimBuffer(...args: Array<string | number | Buffer>): Promise<unknown>;
  xreadgroupBuffer(...args: Array<string | number | Buffer>): Promise<unknown>;
} {
  return client as unknown as ReturnType<typeof buffers>;
}

function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

export function createRedisStreams(options: RedisStreamsOptions): RedisStreams {
  const capabilities: ReadonlySet<Capability> = new Set<Capability>(['queue']);
  const retentionMs =
    options.retentionMs !== undefined && Number.isFinite(options.retentionMs) && options.retentionMs > 0
      ? Math.ceil(options.retentionMs)
      : undefined;
  const base: RedisOptions = messagingClientOptions(options);
  const commands = new Redis(options.endpoint, {
    ...base,
    enableAutoPipelining: true,
    commandTimeout: DEFAULT_OPERATION_TIMEOUT_MS,
  });
  commands.defineCommand('prismRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
  commands.defineCommand('prismAppendOnce', { numberOfKeys: 2, lua: APPEND_ONCE_SCRIPT });
  const release = (commands as unknown as { prismRelease: Release }).prismRelease.bind(commands);
  let lastError: unknown;
  commands.on('error', (err: unknown) => (lastError = err));
  const members = new Set<Subscription>();
  let closed = false;

  const down = (what: string, err: unknown) =>
    err instanceof BackendDownError ? err : new BackendDownError('redis', what, err ?? lastError);

  /**
   * Runs a command on the command connection; outages and timeouts (ioredis' commandTimeout)
   * become BackendDownError, Redis' own errors pass. No promise or timer of its own: this is the
   * path of every enqueue and ack.
   */
  function entryFields(message: Message): [string, Buffer, string, string] {
    const headers = JSON.stringify(copyHeaders(message.headers));
    const payload = Buffer.from(
      message.payload.buffer,
      message.payload.byteOffset,
      message.payload.byteLength,
    );
    return [PAYLOAD, payload, HEADERS, headers];
  }

  function minId(): string {
    return retentionMs === undefined ? '' : String(Date.now() - retentionMs);
  }

  /** Queues the append of `message` on `target` (the connection or a MULTI), de-duplicated by its id. */
  function append(target: Redis | ChainableCommander, message: Message): unknown {
    const key = streamKey(options.namespace, message.topic);
    const id = message.headers[MESSAGE_ID_HEADER];
    const trim = minId();
    if (id) {
      return (target as unknown as { prismAppendOnce: AppendOnce }).prismAppendOnce(
        key,
        `${key}:dedup:${id}`,
        DEDUP_WINDOW_MS,
        trim,
        ...entryFields(message),
      );
    }
    return trim === ''
      ? target.xadd(key, '*', ...entryFields(message))
      : target.xadd(key, 'MINID', '=', trim, '*', ...entryFields(message));
  }

  function run<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new BackendDownError('redis', 'driver is closed'));
    if (commands.status !== 'ready')
      return Promise.reject(new BackendDownError('redis', `connection ${commands.status}`, lastError));
    return op().catch((err: unknown) => {
      throw isReplyError(err) ? err : down(what, err);
    });
  }

  async function ensureGroup(key: string, group: string): Promise<void> {
    try {
      await run('XGROUP CREATE', () => commands.xgroup('CREATE', key, group, '0', 'MKSTREAM'));
    } catch (err) {
      if (!(isReplyError(err) && /BUSYGROUP/.test((err as Error).message))) throw err;
    }
  }

  async function consume(
    topic: string,
    group: string,
    handler: (delivery: Delivery) => void | Promise<void>,
    consumeOptions?: ConsumeOptions,
  ): Promise<Subscription> {
    const ackTimeoutMs = Math.max(1, consumeOptions?.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS);
    const batch = prefetchOf(consumeOptions, BATCH);
    const interval = claimIntervalMs(ackTimeoutMs);
    const key = streamKey(options.namespace, topic);
    const consumer = `${hostname()}-${process.pid}-${randomUUID()}`;
    await ensureGroup(key, group);

    // XREADGROUP BLOCK holds its connection, so each member reads on a connection of its own.
    const reader = new Redis(options.endpoint, base);
    reader.on('error', () => undefined);
    try {
      await withDeadline(reader.connect(), DEFAULT_OPERATION_TIMEOUT_MS, 'redis', 'connect');
    } catch (err) {
      reader.disconnect();
      throw down('connect', err);
    }

    /** Deliveries handed to the handler and not yet settled: entry id → attempt. */
    const unsettled = new Map<string, number>();
    let stopped = false;
    let claimCursor = '0-0';
    let lastClaimAt = 0;
    const staleMemberMs = options.staleMemberMs ?? STALE_MEMBER_MS;
    const sweepEveryMs = Math.max(interval, Math.min(60_000, staleMemberMs));
    let lastSweepAt = Date.now();

    /** Deletes members of the group that hold nothing and have not read for staleMemberMs. */
    const sweep = async (): Promise<void> => {
      const members = (await run('XINFO CONSUMERS', () =>
        commands.xinfo('CONSUMERS', key, group),
      )) as unknown[][];
      for (const fields of members) {
        const info = new Map<string, unknown>();
        for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
        const name = String(info.get('name'));
        if (name === consumer || Number(info.get('pending')) !== 0) continue;
        if (Number(info.get('idle')) < staleMemberMs) continue;
        await forgetMember(key, group, name);
      }
    };

    // Acks of one turn of the event loop: one XACK naming every entry.
    const xacks = new Coalescer<string>(async (ids) => {
      await run('XACK', () => commands.xack(key, group, ...ids));
    });

    const deliver = async (entry: RawEntry, attempt: number): Promise<void> => {
      const [rawId, fields] = entry;
      if (fields === null) return; // trimmed while pending (Redis < 7 reports it this way)
      const id = rawId.toString('latin1');
      const payload = field(fields, PAYLOAD) ?? Buffer.alloc(0);
      unsettled.set(id, attempt);
      let settled = false;
      const delivery: Delivery = {
        topic,
        payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
        headers: decodeHeaders(field(fields, HEADERS)),
        attempt,
        async ack() {
          if (settled) return;
          await xacks.add(id);
          settled = true;
          unsettled.delete(id);
        },
        async nack() {
          if (settled) return;
          await run('nack', () => release(key, group, consumer, id, attempt, ackTimeoutMs));
          settled = true;
          unsettled.delete(id);
        },
      };
      try {
        await handler(delivery);
      } catch {
        // Left unacknowledged: another claim redelivers it after ackTimeoutMs.
      }
    };

    /** Entries idle for ackTimeoutMs in the group, now this member's, with their delivery counts. */
    const claim = async (): Promise<Array<{ entry: RawEntry; attempt: number }>> => {
      const reply = (await run('XAUTOCLAIM', () =>
        buffers(commands).xautoclaimBuffer(key, group, consumer, ackTimeoutMs, claimCursor, 'COUNT', batch),
      )) as [Buffer, RawEntry[], Buffer[]?];
      claimCursor = reply[0].toString('latin1');
      const entries = reply[1].filter((e) => e[1] !== null);
      if (entries.length === 0) return [];
      const pipeline = commands.pipeline();
      for (const [id] of entries) pipeline.xpending(key, group, id, id, 1, consumer);
      const counts = (await run('XPENDING', () => pipeline.exec())) ?? [];
      const out: Array<{ entry: RawEntry; attempt: number }> = [];
      entries.forEach((entry, i) => {
        const [err, rows] = counts[i] ?? [null, []];
        const row = err ? undefined : (rows as Array<[string, string, number, number]>)[0];
        // Gone from this member since the claim (acknowledged elsewhere): nothing to deliver.
        if (row !== undefined) out.push({ entry, attempt: Number(row[3]) });
      });
      return out;
    };

    const read = async (): Promise<RawEntry[]> => {
      const reply = (await buffers(reader).xreadgroupBuffer(
        'GROUP',
        group,
        consumer,
        'COUNT',
        batch,
        'BLOCK',
        interval,
        'STREAMS',
        key,
        '>',
      )) as Array<[Buffer, RawEntry[]]> | null;
      return reply?.[0]?.[1] ?? [];
    };

    const loop = (async () => {
      while (!stopped) {
        try {
          if (Date.now() - lastSweepAt >= sweepEveryMs) {
            lastSweepAt = Date.now();
            await sweep();
          }
          if (Date.now() - lastClaimAt >= interval) {
            lastClaimAt = Date.now();
            for (const { entry, attempt } of await claim()) {
              if (stopped) break;
              await deliver(entry, attempt);
            }
          }
          if (stopped) break;
          for (const entry of await read()) {
            if (stopped) break;
            await deliver(entry, 1);
          }
        } catch (err) {
          if (stopped) break;
          // Redis lost the stream or the group (restart without persistence): make it again.
          if (isReplyError(err) && /NOGROUP/.test((err as Error).message)) {
            await ensureGroup(key, group).catch(() => undefined);
          } else {
            await sleep(RETRY_PAUSE_MS);
          }
        }
      }
    })();

    const subscription: Subscription = {
      async close() {
        if (stopped) return;
        stopped = true;
        members.delete(subscription);
        // Ends a blocking read at once; the loop stops after the handler that runs now.
        reader.disconnect();
        await loop;
        // Hand back what this member still holds, so the group's next claim takes it.
        await Promise.allSettled(
          [...unsettled].map(([id, attempt]) =>
            run('release', () => release(key, group, consumer, id, attempt, ackTimeoutMs)),
          ),
        );
        unsettled.clear();
        await forgetMember(key, group, consumer).catch(() => undefined);
      },
    };
    members.add(subscription);
    return subscription;
  }

  /** Deletes the member's name from the group when it holds nothing (DELCONSUMER drops what it holds). */
  async function forgetMember(key: string, group: string, consumer: string): Promise<void> {
    const held = (await run('XPENDING', () =>
      commands.xpending(key, group, '-', '+', 1, consumer),
    )) as unknown[];
    if (held.length === 0)
      await run('XGROUP DELCONSUMER', () => commands.xgroup('DELCONSUMER', key, group, consumer));
  }

  return {
    backend: 'redis',
    capabilities,

    async connect() {
      if (closed) throw new BackendDownError('redis', 'driver is closed');
      try {
        await withDeadline(
          (async () => {
            if (commands.status === 'wait') await commands.connect();
            await commands.ping();
          })(),
          DEFAULT_OPERATION_TIMEOUT_MS,
          'redis',
          'connect',
        );
      } catch (err) {
        throw down('connect', err);
      }
    },

    async health() {
      await run('PING', () => commands.ping());
    },

    async close() {
      if (closed) return;
      await Promise.allSettled([...members].map((m) => m.close()));
      closed = true;
      await commands.quit().catch(() => undefined);
      commands.disconnect();
    },

    async enqueue(message) {
      await run('XADD', () => append(commands, message) as Promise<unknown>);
    },

    // One MULTI/EXEC of the batch's appends: one round trip, all or nothing; a batch retried after
    // its reply was lost appends nothing twice (the message-id markers).
    async enqueueMany(messages) {
      if (messages.length === 0) return;
      await run('XADD', async () => {
        const tx = commands.multi();
        for (const m of messages) append(tx, m);
        const replies = await tx.exec();
        if (replies === null) throw new BackendDownError('redis', 'MULTI of XADD was aborted');
        const failed = replies.find(([err]) => err);
        if (failed?.[0]) throw failed[0];
      });
    },

    consume,
  };
}
