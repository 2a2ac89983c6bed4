/**
 * The postgres queue's de-duplication by `prism-message-id`: a batch enqueued again (what the
 * producer does when a COMMIT landed but its reply was lost, the server killed in between) stores
 * nothing twice, while messages without an id are stored each time; and a topic table made before
 * de-duplication existed gets its key column and keeps its messages.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Delivery, Message } from '../../../src/drivers/interfaces.js';
import {
  createPostgresQueue,
  queueTableName,
  type PostgresQueue,
} from '../../../src/drivers/postgres/queue.js';
import { describeWithService, postgresUrl, uniqueName } from '../../support/services.js';
import { eventually } from '../../support/eventually.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const message = (topic: string, body: string, id?: string): Message => ({
  topic,
  payload: text(body),
  headers: id !== undefined ? { 'prism-message-id': id } : {},
});

await describeWithService('postgres', 'postgres queue de-duplication by message id', () => {
  const namespace = uniqueName('dedupq');
  let queue: PostgresQueue;

  beforeAll(async () => {
    queue = createPostgresQueue({ endpoint: postgresUrl(), namespace });
    await queue.connect();
  });

  afterAll(async () => {
    await queue.close();
  });

  /** Everything the group gets within a second after `expected` arrived, acknowledged. */
  async function drain(topic: string, expected: number): Promise<string[]> {
    const got: string[] = [];
    const subscription = await queue.consume!(topic, 'readers', async (d: Delivery) => {
      got.push(str(d.payload));
      await d.ack();
    });
    try {
      await eventually(`${expected} deliveries`, async () => {
        if (got.length < expected) throw new Error(`${got.length} so far`);
      });
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      await subscription.close();
    }
    return got.sort();
  }

  it('stores a repeated message id once, in a batch retried whole and in single enqueues', async () => {
    const topic = 'orders';
    const batch = [message(topic, 'a', 'id-a'), message(topic, 'b', 'id-b'), message(topic, 'n')];
    await queue.enqueueMany!(batch);
    await queue.enqueueMany!(batch); // the retry of a batch whose reply was lost
    await queue.enqueue!(message(topic, 'a again', 'id-a'));
    await queue.enqueueMany!([message(topic, 'c', 'id-c'), message(topic, 'c twice', 'id-c')]);
    expect(await drain(topic, 5)).toEqual(['a', 'b', 'c', 'n', 'n']);
  });

  it('gives a topic table from before de-duplication its key column, keeping its messages', async () => {
    const topic = 'legacy';
    const t = queueTableName(namespace, topic);
    const client = new pg.Client({ connectionString: postgresUrl() });
    await client.connect();
    try {
      await client.query(
        `CREATE TABLE ${t} (id bigserial PRIMARY KEY, payload bytea NOT NULL, headers jsonb NOT NULL,
           published_at bigint NOT NULL)`,
      );
      await client.query(`INSERT INTO ${t} (payload, headers, published_at) VALUES ($1, '{}', 0)`, [
        Buffer.from('old'),
      ]);
    } finally {
      await client.end();
    }
    await queue.enqueue!(message(topic, 'new', 'id-new'));
    await queue.enqueue!(message(topic, 'new', 'id-new'));
    // The old message was kept before any group existed: the first group receives it too.
    expect(await drain(topic, 2)).toEqual(['new', 'old']);
  });
});
