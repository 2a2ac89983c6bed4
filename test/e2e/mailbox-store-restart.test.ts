/**
 * A mailbox's PostgreSQL store restarted in the middle of ingest, through the proxy only: the
 * store is a private PostgreSQL this test starts and kills (SIGQUIT: every backend exits at once,
 * no checkpoint), the source the shared NATS. Every message the producer had acknowledged is in
 * the mailbox afterwards, each once: ingest acknowledges a message only after its row committed,
 * so what the kill interrupted is redelivered, and the insert by message id makes a redelivery of
 * a stored row a no-op.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { MailboxClient } from '../../src/client/mailbox-client.js';
import { ensureBuilt } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { postgresServerPresence, privatePostgres, type PrivateServer } from '../support/private-backends.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { describeIfPresent, describeWithServices, natsUrl, uniqueName } from '../support/services.js';

const MESSAGES = 600;

await describeWithServices(['nats'], 'a mailbox store restart', () => {
  describeIfPresent('a private PostgreSQL', postgresServerPresence(), 'a mailbox store restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-mailbox-restart-'));
    const namespace = uniqueName('mbx-restart');
    const topic = uniqueName('orders').replace(/[^a-z0-9.-]/g, '');
    let pg: PrivateServer & { stop(): Promise<void> };
    let proxy: RunningServer | undefined;
    let endpoint: string;

    beforeAll(async () => {
      await ensureBuilt();
      pg = await privatePostgres();
      const pgUrl = new URL(pg.endpoint);
      pgUrl.username = '';
      writeFileSync(
        join(dir, 'backends.yaml'),
        [
          'backends:',
          `  postgres: [{ name: private, endpoint: "${pgUrl.toString()}" }]`,
          `  nats: [{ name: test, endpoint: "${natsUrl()}" }]`,
          '',
        ].join('\n'),
      );
      mkdirSync(join(dir, 'ns'));
      writeFileSync(
        join(dir, 'ns', `${namespace}.yaml`),
        [
          `namespace: ${namespace}`,
          'team: platform',
          'patterns:',
          '  - name: events',
          '    type: producer',
          '    slots: { sink: { backend: nats } }',
          `    settings: { topic: ${topic} }`,
          '  - name: inbox',
          '    type: mailbox',
          '    slots:',
          '      source: { backend: nats }',
          '      store: { backend: postgres, credentials: "${PRISM_E2E_PG_CREDENTIALS}" }',
          `    settings: { topic: ${topic}, indexed_headers: [order-id] }`,
          '',
        ].join('\n'),
      );
      proxy = await startProxy({ namespaces: join(dir, 'ns'), backends: join(dir, 'backends.yaml') }, [], {
        PRISM_E2E_PG_CREDENTIALS: 'postgres:unused',
      });
      endpoint = `127.0.0.1:${proxy.ready.port as number}`;
    }, 120_000);

    afterAll(async () => {
      if (proxy) expect(await proxy.stop()).toBe(0);
      await pg?.stop();
    });

    it('stores every acknowledged message once across a kill and restart of its PostgreSQL', async () => {
      const producer = new DataClient(endpoint, { namespace, timeoutMs: 20_000 });
      const mailbox = new MailboxClient(endpoint, { namespace, timeoutMs: 20_000 });
      const stored = async (): Promise<string[]> => {
        const ids: string[] = [];
        let pageToken = '';
        do {
          const page = await mailbox.query({ limit: 1000, pageToken });
          ids.push(...page.messages.map((m) => m.envelope!.messageId));
          pageToken = page.nextPageToken;
        } while (pageToken !== '');
        return ids;
      };
      try {
        const published: string[] = [];
        const publish = async (i: number) => {
          const res = await producer.publish({
            payload: Buffer.from(`m${i}`),
            headers: { 'order-id': `o-${i % 5}` },
          });
          published.push(res.messageId);
        };
        for (let i = 0; i < MESSAGES / 2; i++) await publish(i);
        // Some rows are in, ingest is still going: the store dies under it.
        await eventually('the first rows stored', async () => {
          if ((await stored()).length === 0) throw new Error('none yet');
        });
        await pg.kill();
        for (let i = MESSAGES / 2; i < MESSAGES; i++) await publish(i);
        await pg.start();

        await eventually(
          'every published message stored after the restart',
          async () => {
            const ids = await stored();
            if (ids.length < MESSAGES) throw new Error(`${ids.length} of ${MESSAGES} stored`);
          },
          { timeoutMs: 60_000, intervalMs: 500 },
        );
        // Redeliveries still arriving make no second row.
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const ids = await stored();
        expect(ids).toHaveLength(MESSAGES);
        expect(new Set(ids)).toEqual(new Set(published));
        // The kill hit ingest: a batch the store did not take went back to be redelivered.
        expect(proxy!.logs()).toContain('mailbox store did not take the messages; they will be redelivered');
      } finally {
        producer.close();
        mailbox.close();
      }
    }, 120_000);
  });
});
