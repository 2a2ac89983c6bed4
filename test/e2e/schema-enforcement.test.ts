/**
 * Schema enforcement through the proxy only (client → proxy → producer's schema stage → NATS or
 * Kafka), against a real `prismctl admin serve` as the schema registry and a real `proxy serve
 * --admin` (docs/schemas.md, Enforcement): an invalid payload is refused at publish with
 * INVALID_ARGUMENT naming the field path, for JSON Schema, protobuf and Avro, and on a
 * PublishStream the other messages go on; a valid one is
 * delivered with the schema id and version; a version registered later is enforced once the
 * proxy's schema cache expires; with the admin gone the last version fetched stays enforced and a
 * subject never fetched is refused with UNAVAILABLE.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import type { PrismError } from '../../src/errors.js';
import type { ConsumeDelivery } from '../../src/gen/prism/data/v1/messaging_pb.js';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { describeWithServices, kafkaBrokers, natsUrl, uniqueName } from '../support/services.js';
import { consumeReader, sleep, waitFor } from './support-streams.js';

const TTL_MS = 1_000;
const name = uniqueName('enforce');
const dir = mkdtempSync(join(tmpdir(), 'prism-enforce-'));

const ORDER_JSON = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    amount: { type: 'number', minimum: 0 },
    customer: {
      type: 'object',
      properties: { email: { type: 'string', format: 'email' } },
      required: ['email'],
    },
  },
  required: ['id', 'amount'],
  additionalProperties: false,
};
const ORDER_PROTO = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  Customer customer = 2;
  int64 amount = 3;
}
message Customer {
  string email = 1;
}
`;
const ORDER_AVRO = {
  type: 'record',
  name: 'Order',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'amount', type: 'long' },
  ],
};

const producer = (pattern: string, backend: string, subject: string, enforce: boolean) => [
  `  - name: ${pattern}`,
  '    type: producer',
  `    slots: { sink: { backend: ${backend} } }`,
  `    settings: { topic: ${pattern}, schema: { subject: ${name}.${subject}-value, enforce: ${enforce} } }`,
];
const consumer = (pattern: string, backend: string, topic: string) => [
  `  - name: ${pattern}`,
  '    type: consumer',
  `    slots: { source: { backend: ${backend} } }`,
  `    settings: { topic: ${topic}, consumer_group: readers }`,
];

let admin: RunningAdmin | undefined;
let proxy: RunningServer | undefined;
let endpoint = '';
const clients: DataClient[] = [];
const client = (pattern: string) => {
  const c = new DataClient(endpoint, { namespace: name, pattern, timeoutMs: 20_000 });
  clients.push(c);
  return c;
};

async function register(subject: string, schema: string, schemaType: string): Promise<{ id: number }> {
  const res = await fetch(`http://127.0.0.1:${admin!.httpPort}/subjects/${name}.${subject}-value/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema, schemaType }),
  });
  const body = (await res.json()) as { id: number };
  if (res.status !== 200) throw new Error(`register ${subject}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

function refusal(promise: Promise<unknown>): Promise<PrismError | undefined> {
  return promise.then(
    () => undefined,
    (err: unknown) => err as PrismError,
  );
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
/** shop.Order { id: "o-1", customer: { email: <email> }, amount: 10 } in protobuf binary. */
const orderProto = (email: string) =>
  Buffer.concat([
    Buffer.from([0x0a, 3]),
    Buffer.from('o-1'),
    Buffer.from([0x12, email.length + 2, 0x0a, email.length]),
    Buffer.from(email),
    Buffer.from([0x18, 10]),
  ]);

/** Opens a Consume stream and returns the first delivery of the payload `expected`. */
async function deliveryOf(
  pattern: string,
  topic: string,
  backend: string,
  publish: () => Promise<unknown>,
  expected: Buffer,
): Promise<ConsumeDelivery> {
  const c = client(pattern);
  const stream = c.consume({ topic, group: 'readers', maxInFlight: 16 });
  const reader = consumeReader(stream);
  try {
    // The group exists before anything is published (Kafka starts a new group at the end).
    await sleep(backend === 'kafka' ? 4_000 : 300);
    await publish();
    const found = () => reader.received.find((d) => Buffer.from(d.message?.payload ?? []).equals(expected));
    await waitFor(`the delivery on ${backend}`, () => found() !== undefined || reader.failure !== undefined);
    if (reader.failure) throw reader.failure;
    const delivery = found()!;
    c.ack(stream, [delivery.deliveryId]);
    return delivery;
  } finally {
    stream.cancel();
  }
}

await describeWithServices(['nats', 'kafka'], 'schema enforcement through the proxy', () => {
  let jsonId = 0;
  let protoId = 0;
  let avroId = 0;

  beforeAll(async () => {
    await ensureBuilt();
    writeFileSync(
      join(dir, 'backends.yaml'),
      [
        'backends:',
        `  nats: [{ name: test, endpoint: "${natsUrl()}" }]`,
        `  kafka: [{ name: test, endpoint: "kafka://${kafkaBrokers().join(',')}" }]`,
        `  memstore: [{ name: local, endpoint: "memory://" }]`,
        '',
      ].join('\n'),
    );
    admin = await startAdmin({
      extraArgs: ['--backends', join(dir, 'backends.yaml'), '--heartbeat-interval', '300'],
    });
    proxy = await startPrismServer(
      [
        ...['proxy', 'serve', '--admin', admin.endpoint, '--schema-ttl', `${TTL_MS}ms`],
        ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
      ],
      'prism proxy serving',
    );
    endpoint = `127.0.0.1:${proxy.ready.port as number}`;
    writeFileSync(
      join(dir, 'ns.yaml'),
      [
        `namespace: ${name}`,
        'team: commerce',
        'patterns:',
        ...producer('orders-json', 'nats', 'orders-json', true),
        ...producer('orders-avro', 'nats', 'orders-avro', true),
        ...producer('orders-proto', 'kafka', 'orders-proto', true),
        ...producer('stamped', 'kafka', 'stamped', false),
        ...producer('late', 'nats', 'late', true),
        ...consumer('json-reader', 'nats', 'orders-json'),
        ...consumer('proto-reader', 'kafka', 'orders-proto'),
        ...consumer('stamped-reader', 'kafka', 'stamped'),
        '',
      ].join('\n'),
    );
    const applied = await runCli(['namespace', 'apply', join(dir, 'ns.yaml'), '--admin', admin.endpoint]);
    expect(applied.code, applied.stderr).toBe(0);
    jsonId = (await register('orders-json', JSON.stringify(ORDER_JSON), 'JSON')).id;
    avroId = (await register('orders-avro', JSON.stringify(ORDER_AVRO), 'AVRO')).id;
    protoId = (await register('orders-proto', ORDER_PROTO, 'PROTOBUF')).id;
    await register('stamped', JSON.stringify({ type: 'object' }), 'JSON');
    await register('late', JSON.stringify({ type: 'string' }), 'JSON');
    await eventually('the namespace being served', () =>
      client('orders-json').publish({ payload: json({ id: 'warm-up', amount: 0 }) }),
    );
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    expect(await proxy?.stop()).toBe(0);
    await admin?.stop();
  });

  it('refuses a JSON payload that breaks the schema with INVALID_ARGUMENT naming the field path (NATS)', async () => {
    const c = client('orders-json');
    const bad = await refusal(
      c.publish({ payload: json({ id: 'o-1', amount: 5, customer: { email: 'not-an-email' } }) }),
    );
    expect(bad?.code).toBe('E_INVALID_ARGUMENT');
    expect(bad?.message).toBe(
      `payload does not match schema ${name}.orders-json-value version 1 (id ${jsonId}): customer.email: must match format "email"`,
    );
    const missing = await refusal(c.publish({ payload: json({ id: 'o-1' }) }));
    expect(missing?.message).toContain(`(id ${jsonId}): amount: is required`);
    const notJson = await refusal(c.publish({ payload: Buffer.from('{"id":') }));
    expect(notJson?.message).toMatch(/\(id \d+\): \(root\): payload is not UTF-8 JSON/);
  });

  it('delivers a valid JSON payload with the schema id and version in the envelope (NATS)', async () => {
    const payload = json({ id: 'o-2', amount: 12.5, customer: { email: 'ada@example.com' } });
    const delivery = await deliveryOf(
      'json-reader',
      'orders-json',
      'nats',
      () => client('orders-json').publish({ payload }),
      payload,
    );
    expect(delivery.message?.schemaId).toBe(jsonId);
    expect(delivery.message?.schemaVersion).toBe(1);
    expect(delivery.message?.headers).toEqual({});
  });

  it('refuses the bad message of a PublishStream with its field path and publishes the others', async () => {
    const writer = client('orders-json').publishStream();
    const first = writer.publish({ payload: json({ id: 's-1', amount: 1 }) });
    const bad = refusal(writer.publish({ payload: json({ id: 's-2', amount: 'lots' }) }));
    const third = writer.publish({ payload: json({ id: 's-3', amount: 3 }) });
    expect((await first).messageId).not.toBe('');
    const refused = await bad;
    expect(refused?.code).toBe('E_INVALID_ARGUMENT');
    expect(refused?.message).toBe(
      `payload does not match schema ${name}.orders-json-value version 1 (id ${jsonId}): amount: must be number`,
    );
    expect((await third).messageId).not.toBe('');
    await writer.end();
  });

  it('refuses a protobuf payload whose field has the wrong wire type, naming it (Kafka)', async () => {
    const bad = Buffer.from([0x0a, 3, ...Buffer.from('o-1'), 0x12, 2, 0x08, 5]);
    const refused = await refusal(client('orders-proto').publish({ payload: bad }));
    expect(refused?.code).toBe('E_INVALID_ARGUMENT');
    expect(refused?.message).toBe(
      `payload does not match schema ${name}.orders-proto-value version 1 (id ${protoId}): customer.email: wire type Varint does not fit a string field`,
    );
    const unknown = await refusal(client('orders-proto').publish({ payload: Buffer.from([0x38, 1]) }));
    expect(unknown?.message).toContain('(root): field number 7 is not declared in shop.Order');
  });

  it('delivers a valid protobuf payload with the schema id and version (Kafka)', async () => {
    const payload = orderProto('ada@example.com');
    const delivery = await deliveryOf(
      'proto-reader',
      'orders-proto',
      'kafka',
      () => client('orders-proto').publish({ payload }),
      payload,
    );
    expect(delivery.message?.schemaId).toBe(protoId);
    expect(delivery.message?.schemaVersion).toBe(1);
  }, 60_000);

  it('refuses a truncated Avro payload naming the field and accepts a whole one', async () => {
    const type = avro.Type.forSchema(ORDER_AVRO as avro.Schema);
    const whole = type.toBuffer({ id: 'o-3', amount: 4200 });
    const refused = await refusal(client('orders-avro').publish({ payload: whole.subarray(0, 4) }));
    expect(refused?.message).toBe(
      `payload does not match schema ${name}.orders-avro-value version 1 (id ${avroId}): amount: the payload ends inside this long value`,
    );
    const trailing = await refusal(
      client('orders-avro').publish({ payload: Buffer.concat([whole, Buffer.from([1])]) }),
    );
    expect(trailing?.message).toContain('(root): 1 bytes left after the shop.Order datum');
    await client('orders-avro').publish({ payload: whole });
  });

  it('without enforce only stamps: any payload is delivered with the schema id (Kafka)', async () => {
    const payload = Buffer.from('not json at all');
    const delivery = await deliveryOf(
      'stamped-reader',
      'stamped',
      'kafka',
      () => client('stamped').publish({ payload }),
      payload,
    );
    expect(delivery.message?.schemaId).toBeGreaterThan(0);
    expect(delivery.message?.schemaVersion).toBe(1);
  }, 60_000);

  it('enforces a new version once the schema cache expires', async () => {
    const c = client('orders-json');
    const withNote = json({ id: 'o-4', amount: 1, note: 'gift' });
    const before = await refusal(c.publish({ payload: withNote }));
    expect(before?.message).toContain('version 1');
    expect(before?.message).toContain('note: is not allowed (additionalProperties)');
    const v2 = {
      ...ORDER_JSON,
      properties: { ...ORDER_JSON.properties, note: { type: 'string', maxLength: 10 } },
    };
    const { id } = await register('orders-json', JSON.stringify(v2), 'JSON');
    expect(id).not.toBe(jsonId);
    await sleep(TTL_MS + 200);
    await c.publish({ payload: withNote });
    const tooLong = await refusal(
      c.publish({ payload: json({ id: 'o-5', amount: 1, note: 'x'.repeat(11) }) }),
    );
    expect(tooLong?.message).toBe(
      `payload does not match schema ${name}.orders-json-value version 2 (id ${id}): note: must NOT have more than 10 characters`,
    );
  });

  it('with the admin down keeps enforcing the last version fetched and refuses an unknown subject with UNAVAILABLE', async () => {
    const c = client('orders-json');
    await c.publish({ payload: json({ id: 'o-6', amount: 1 }) });
    await admin!.stop();
    await sleep(TTL_MS + 200);
    await c.publish({ payload: json({ id: 'o-7', amount: 2 }) });
    const bad = await refusal(c.publish({ payload: json({ id: 'o-8', amount: -1 }) }));
    expect(bad?.message).toContain('version 2');
    expect(bad?.message).toContain('amount: must be >= 0');
    const late = await refusal(client('late').publish({ payload: json('hello') }));
    expect(late?.code).toBe('E_UNAVAILABLE');
    expect(late?.message).toContain(`the schema of subject '${name}.late-value' cannot be fetched`);
  }, 30_000);
});
