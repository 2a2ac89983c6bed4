/**
 * PostgreSQL queue (capability `queue`): durable, at-least-once, consumer groups.
 *
 * Per namespace and topic, three tables named from `q_<namespace>_<topic>` (lower-cased,
 * characters outside [a-z0-9_] replaced, a hash suffix added when anything was replaced or the
 * name is long):
 *   <t>    messages:   id bigserial, payload bytea, headers jsonb, published_at bigint (ms),
 *                      message_key text UNIQUE (the `prism-message-id` header, NULL without one)
 *   <t>_g  groups:     every group that ever consumed the topic
 *   <t>_d  deliveries: one row per (group, message) still to acknowledge, with attempt count and
 *                      visible_at (the visibility timeout)
 * Enqueue inserts the message and a delivery row for every known group in one statement. A group
 * consuming for the first time is registered and receives every message still kept. A message is
 * deleted once no delivery row points at it. A message enqueued in the very instant a new group
 * registers may be missed by that new group only.
 *
 * De-duplication: an enqueue whose `prism-message-id` is already kept inserts nothing (ON
 * CONFLICT on message_key), so a batch retried after its COMMIT landed but the reply was lost (the
 * server killed in between) is not stored twice. The key is kept as long as the message is.
 *
 * Claiming: `FOR UPDATE SKIP LOCKED` on the group's visible delivery rows, which sets
 * visible_at = now() + ackTimeoutMs and increments the attempt: consumers of one group never
 * block each other and a claim is invisible to them until it times out. Ack deletes the delivery
 * row (only for the attempt that was delivered); nack makes it visible again at once. Acks (and
 * nacks) issued in one turn of the event loop are one statement for the whole batch. Consumers
 * poll with a short adaptive interval (immediately again while there is work, up to 100 ms idle).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { poolConfig } from './connection.js';
import { isPostgresUnavailable } from './errors.js';
import { inTransaction } from './transaction.js';
import type { Capability } from '../../config/registry.js';
import {
  BackendDownError,
  prefetchOf,
  type Delivery,
  type Driver,
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

const BATCH = 16;
const IDLE_POLL_MS = 100;

/** A safe, unique SQL identifier base for a namespace's topic. */
export function queueTableName(namespace: string, topic: string): string {
  const raw = `q_${namespace}_${topic}`;
  const clean = raw.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (clean === raw && clean.length <= 40) return clean;
  const hash = createHash('sha256').update(raw).digest('hex').slice(0, 10);
  return `${clean.slice(0, 40)}_${hash}`;
}

/** A message's de-duplication key: its topic-scoped table makes the id enough. */
function keyOf(message: Message): string | null {
  return message.headers[MESSAGE_ID_HEADER] || null;
}

function isConnectionError(err: unknown): boolean {
  return err instanceof BackendDownError || isPostgresUnavailable(err);
}

export type PostgresQueue = Driver & Queue;

interface Tables {
  messages: string;
  groups: string;
  deliveries: string;
}

export function createPostgresQueue(options: DriverOptions): PostgresQueue {
  const capabilities: ReadonlySet<Capability> = new Set<Capability>(['queue']);
  const pool = new pg.Pool({
    ...poolConfig(options.endpoint, options.credentials),
    connectionTimeoutMillis: 2_000,
    max: 10,
  });
  pool.on('error', () => undefined); // an idle client lost its server; the pool replaces it
  const ensured = new Map<string, Promise<Tables>>();
  const consumers = new Set<Subscription>();

  async function run<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(op(), DEFAULT_OPERATION_TIMEOUT_MS, 'postgres', what);
    } catch (err) {
      if (isConnectionError(err)) {
        throw err instanceof BackendDownError ? err : new BackendDownError('postgres', what, err);
      }
      throw err;
    }
  }

  function tables(topic: string): Promise<Tables> {
    const base = queueTableName(options.namespace, topic);
    let promise = ensured.get(base);
    if (!promise) {
      const t: Tables = { messages: base, groups: `${base}_g`, deliveries: `${base}_d` };
      promise = inTransaction(pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [base]);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${t.messages} (
             id bigserial PRIMARY KEY, payload bytea NOT NULL, headers jsonb NOT NULL,
             published_at bigint NOT NULL)`,
        );
        // A table from before de-duplication gets its column here (once per process and topic).
        await client.query(`ALTER TABLE ${t.messages} ADD COLUMN IF NOT EXISTS message_key text UNIQUE`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${t.groups} (grp text PRIMARY KEY)`);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${t.deliveries} (
             grp text NOT NULL, message_id bigint NOT NULL, attempt int NOT NULL DEFAULT 0,
             visible_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (grp, message_id))`,
        );
        return t;
      });
      promise.catch(() => ensured.delete(base));
      ensured.set(base, promise);
    }
    return promise;
  }

  function registerGroup(t: Tables, group: string): Promise<void> {
    return inTransaction(pool, async (client) => {
      const inserted = await client.query(
        `INSERT INTO ${t.groups} (grp) VALUES ($1) ON CONFLICT DO NOTHING RETURNING grp`,
        [group],
      );
      if (inserted.rowCount === 1) {
        await client.query(
          `INSERT INTO ${t.deliveries} (grp, message_id) SELECT $1, id FROM ${t.messages} ON CONFLICT DO NOTHING`,
          [group],
        );
      }
    });
  }

  interface Claimed {
    message_id: string;
    attempt: number;
    payload: Buffer;
    headers: Record<string, string>;
  }

  async function claim(t: Tables, group: string, ackTimeoutMs: number, limit: number): Promise<Claimed[]> {
    const result = await pool.query<Claimed>(
      `UPDATE ${t.deliveries} d
          SET attempt = d.attempt + 1, visible_at = clock_timestamp() + $3 * interval '1 millisecond'
         FROM (SELECT message_id FROM ${t.deliveries}
                WHERE grp = $1 AND visible_at <= clock_timestamp()
                ORDER BY message_id LIMIT $2 FOR UPDATE SKIP LOCKED) c,
              ${t.messages} m
        WHERE d.grp = $1 AND d.message_id = c.message_id AND m.id = c.message_id
        RETURNING d.message_id, d.attempt, m.payload, m.headers`,
      [group, limit, ackTimeoutMs],
    );
    return result.rows.sort((a, b) => (BigInt(a.message_id) < BigInt(b.message_id) ? -1 : 1));
  }

  return {
    backend: 'postgres',
    capabilities,

    async connect() {
      await run('connect', () => pool.query('SELECT 1'));
    },

    async health() {
      await run('SELECT 1', () => pool.query('SELECT 1'));
    },

    async close() {
      await Promise.all([...consumers].map((c) => c.close()));
      await pool.end().catch(() => undefined);
    },

    async enqueue(message) {
      const headers = copyHeaders(message.headers);
      await run('enqueue', async () => {
        const t = await tables(message.topic);
        await pool.query(
          `WITH m AS (
             INSERT INTO ${t.messages} (payload, headers, published_at, message_key) VALUES ($1, $2, $3, $4)
             ON CONFLICT (message_key) DO NOTHING RETURNING id)
           INSERT INTO ${t.deliveries} (grp, message_id) SELECT g.grp, m.id FROM ${t.groups} g, m`,
          [
            Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength),
            headers,
            Date.now(),
            keyOf(message),
          ],
        );
      });
    },

    // One multi-row INSERT per topic (ids ascend in batch order), all topics in one transaction:
    // a failed batch leaves nothing behind, and one whose reply was lost after its COMMIT inserts
    // nothing again when retried (message_key).
    async enqueueMany(messages) {
      if (messages.length === 0) return;
      const byTopic = new Map<string, Message[]>();
      for (const m of messages) {
        const list = byTopic.get(m.topic);
        if (list) list.push(m);
        else byTopic.set(m.topic, [m]);
      }
      await run('enqueue', async () => {
        const entries = await Promise.all(
          [...byTopic].map(async ([topic, list]) => ({ t: await tables(topic), list })),
        );
        await inTransaction(pool, async (client) => {
          for (const { t, list } of entries) {
            await client.query(
              `WITH m AS (
                 INSERT INTO ${t.messages} (payload, headers, published_at, message_key)
                 SELECT u.p, u.h::jsonb, $3, u.k
                 FROM unnest($1::bytea[], $2::text[], $4::text[]) WITH ORDINALITY AS u(p, h, k, n)
                 ORDER BY u.n ON CONFLICT (message_key) DO NOTHING RETURNING id)
               INSERT INTO ${t.deliveries} (grp, message_id) SELECT g.grp, m.id FROM ${t.groups} g, m`,
              [
                list.map((m) => Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength)),
                list.map((m) => JSON.stringify(copyHeaders(m.headers))),
                Date.now(),
                list.map(keyOf),
              ],
            );
          }
        });
      });
    },

    async consume(topic, group, handler, consumeOptions) {
      const ackTimeoutMs = consumeOptions?.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
      const prefetch = prefetchOf(consumeOptions, BATCH);
      const t = await run('consume', () => tables(topic));
      await run('register group', () => registerGroup(t, group));
      let stopped = false;
      let wake: (() => void) | undefined;

      // Settlements of one turn of the event loop go out as one statement each (ack, nack).
      const settleMany = (sql: string, what: string) =>
        new Coalescer<{ id: string; attempt: number }>((items) =>
          run(what, async () => {
            await pool.query(sql, [group, items.map((i) => i.id), items.map((i) => i.attempt)]);
          }),
        );
      const settled = `grp = $1 AND (message_id, attempt) IN (SELECT * FROM unnest($2::bigint[], $3::int[]))`;
      const acks = settleMany(`DELETE FROM ${t.deliveries} WHERE ${settled}`, 'ack');
      const nacks = settleMany(
        `UPDATE ${t.deliveries} SET visible_at = clock_timestamp() WHERE ${settled}`,
        'nack',
      );
      // Messages no group still has to acknowledge, dropped once per batch of acks.
      const sweep = new Coalescer<string>(async (ids) => {
        await pool
          .query(
            `DELETE FROM ${t.messages} m WHERE m.id = ANY($1::bigint[])
               AND NOT EXISTS (SELECT 1 FROM ${t.deliveries} d WHERE d.message_id = m.id)`,
            [ids],
          )
          .catch(() => undefined);
      });

      const loop = (async () => {
        while (!stopped) {
          let rows: Claimed[] = [];
          try {
            // Under the operation deadline like every other query: a claim whose connection went
            // silent must not stall the consumer; rows it claimed come back after ackTimeoutMs.
            rows = await run('claim', () => claim(t, group, ackTimeoutMs, prefetch));
          } catch {
            // Backend down or slow: keep polling; the pool reconnects.
            await sleep(250);
            continue;
          }
          for (const row of rows) {
            if (stopped) break;
            const id = row.message_id;
            const attempt = row.attempt;
            const delivery: Delivery = {
              topic,
              payload: new Uint8Array(row.payload),
              headers: row.headers,
              attempt,
              async ack() {
                await acks.add({ id, attempt });
                await sweep.add(id);
              },
              async nack() {
                await nacks.add({ id, attempt });
              },
            };
            try {
              await handler(delivery);
            } catch {
              // A throwing handler leaves the delivery unacknowledged: it comes back after ackTimeoutMs.
            }
          }
          if (rows.length === 0 && !stopped) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(resolve, IDLE_POLL_MS);
            });
            wake = undefined;
          }
        }
      })();

      const subscription: Subscription = {
        async close() {
          stopped = true;
          wake?.();
          consumers.delete(subscription);
          await loop;
        },
      };
      consumers.add(subscription);
      return subscription;
    },
  };
}
