/** `prismctl runner serve mailbox`: the Mailbox API from a runner in its own process. */
import { create } from '@bufbuild/protobuf';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MailboxClient } from '../../../src/client/mailbox-client.js';
import type { AnyDriver } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import { EnvelopeSchema } from '../../../src/gen/prism/data/v1/envelope_pb.js';
import { encodeEnvelope } from '../../../src/runners/envelope.js';
import { ensureBuilt } from '../../support/cli.js';
import { startPrismServer, type RunningServer } from '../../support/server-process.js';
import { describeWithService, natsUrl, uniqueName } from '../../support/services.js';
import { eventually } from '../../unit/runners/helpers.js';

await describeWithService('nats', 'prismctl runner serve mailbox', () => {
  let runner: RunningServer;
  let client: MailboxClient;
  let nats: AnyDriver;
  const namespace = uniqueName('runner-mbx');

  beforeAll(async () => {
    await ensureBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'prism-runner-mailbox-'));
    writeFileSync(
      join(dir, 'ns.yaml'),
      `namespace: ${namespace}\nteam: platform\npatterns:\n  - name: inbox\n    type: mailbox\n    slots:\n      source: { backend: nats }\n      store: { backend: sqlite }\n    settings: { topic: orders, indexed_headers: [order-id] }\n`,
    );
    writeFileSync(
      join(dir, 'backends.yaml'),
      `backends:\n  nats: [{ name: test, endpoint: "${natsUrl()}" }]\n  sqlite: [{ name: local, endpoint: "file:mailbox.sqlite" }]\n`,
    );
    runner = await startPrismServer(
      [
        'runner',
        'serve',
        'mailbox',
        '--config',
        join(dir, 'ns.yaml'),
        '--backends',
        join(dir, 'backends.yaml'),
        '--listen',
        '127.0.0.1:0',
      ],
      'prism runner serving',
    );
    client = new MailboxClient(`127.0.0.1:${runner.ready.port as number}`, { namespace });
    nats = await createDriver('nats', { endpoint: natsUrl(), namespace });
    await nats.connect();
  });

  afterAll(async () => {
    client?.close();
    await nats?.close();
    expect(await runner?.stop()).toBe(0);
  });

  it('stores what a plain NATS publisher sends and answers Query and Get', async () => {
    for (const [id, order] of [
      ['m-1', 'o-1'],
      ['m-2', 'o-2'],
      ['m-3', 'o-1'],
    ]) {
      await nats.enqueue!(
        encodeEnvelope(
          create(EnvelopeSchema, {
            messageId: id,
            topic: 'orders',
            headers: { 'order-id': order! },
            payload: new TextEncoder().encode(id),
          }),
        ),
      );
    }
    const found = await eventually(
      async () => {
        const res = await client.query({ filter: { headers: { 'order-id': 'o-1' } } });
        return res.messages.length === 2 ? res.messages : undefined;
      },
      20_000,
      'two messages of order o-1',
    );
    expect(found.map((m) => m.envelope!.messageId)).toEqual(['m-3', 'm-1']);
    const got = await client.get('m-2');
    expect(new TextDecoder().decode(got.message!.envelope!.payload)).toBe('m-2');
  });
});
