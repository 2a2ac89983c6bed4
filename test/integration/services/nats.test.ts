import { afterAll, beforeAll, expect, it } from 'vitest';
import { headers, nanos, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connectNats, describeWithService, uniqueName } from '../../support/services.js';

const sc = {
  encode: (text: string) => new TextEncoder().encode(text),
  decode: (data: Uint8Array) => new TextDecoder().decode(data),
};

await describeWithService('nats', 'NATS JetStream test service', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const stream = uniqueName('PRISM_SMOKE').replace(/-/g, '_');
  const subject = `prism.smoke.${stream}`;

  beforeAll(async () => {
    nc = await connectNats();
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await jsm?.streams.delete(stream).catch(() => false);
    await nc?.close();
  });

  it('delivers a published message with headers to a durable pull consumer once, and not again after ack', async () => {
    await jsm.streams.add({ name: stream, subjects: [subject] });
    const js = jetstream(nc);

    const h = headers();
    h.set('x-prism-namespace', 'smoke');
    const pubAck = await js.publish(subject, sc.encode('hello jetstream'), { headers: h, msgID: 'msg-1' });
    expect(pubAck.stream).toBe(stream);
    expect(pubAck.seq).toBe(1);
    expect(pubAck.duplicate).toBe(false);

    await jsm.consumers.add(stream, {
      durable_name: 'smoke',
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(1_000),
    });
    const consumer = await js.consumers.get(stream, 'smoke');

    const received: { data: string; header: string | undefined; redelivered: boolean }[] = [];
    const batch = await consumer.fetch({ max_messages: 1, expires: 2_000 });
    for await (const m of batch) {
      received.push({
        data: sc.decode(m.data),
        header: m.headers?.get('x-prism-namespace'),
        redelivered: m.redelivered,
      });
      await m.ackAck(); // waits for the server to confirm the ack
    }
    expect(received).toEqual([{ data: 'hello jetstream', header: 'smoke', redelivered: false }]);

    // Past ack_wait, an acknowledged message must not come back.
    await new Promise((r) => setTimeout(r, 1_200));
    const again = await consumer.fetch({ max_messages: 1, expires: 1_000 });
    let redeliveries = 0;
    for await (const m of again) {
      redeliveries++;
      m.ack();
    }
    expect(redeliveries).toBe(0);

    const info = await jsm.consumers.info(stream, 'smoke');
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
    expect(info.delivered.stream_seq).toBe(1);
    expect(info.ack_floor.stream_seq).toBe(1);
  });
});
