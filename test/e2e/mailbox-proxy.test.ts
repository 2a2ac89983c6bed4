/**
 * The mailbox pattern through the proxy only: messages a producer publishes to NATS are stored by
 * the namespace's mailbox (SQLite under the proxy's prism home, or PostgreSQL) and found, fetched,
 * watched and deleted with `prismctl mailbox ...` and the Mailbox client.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { MailboxClient } from '../../src/client/mailbox-client.js';
import type { MailboxWatchResponse } from '../../src/gen/prism/data/v1/mailbox_pb.js';
import { ensureBuilt, REPO_ROOT, runCli } from '../support/cli.js';
import { eventually } from '../unit/runners/helpers.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { describeWithServices, natsUrl, postgresUrl, uniqueName } from '../support/services.js';

const dir = mkdtempSync(join(tmpdir(), 'prism-mailbox-e2e-'));
const cliHome = mkdtempSync(join(tmpdir(), 'prism-mailbox-cli-'));
mkdirSync(join(dir, 'ns'));

const STORES = {
  sqlite: { name: uniqueName('mbx-sqlite'), slot: '{ backend: sqlite }' },
  postgres: {
    name: uniqueName('mbx-pg'),
    slot: '{ backend: postgres, credentials: "${PRISM_E2E_PG_CREDENTIALS}" }',
  },
};

function writeFiles(): { catalog: string; pgCredentials: string } {
  const pg = new URL(postgresUrl());
  const pgCredentials = `${decodeURIComponent(pg.username)}:${decodeURIComponent(pg.password)}`;
  pg.username = '';
  pg.password = '';
  const catalog = join(dir, 'backends.yaml');
  writeFileSync(
    catalog,
    [
      'backends:',
      `  postgres: [{ name: test, endpoint: "${pg.toString()}" }]`,
      `  nats: [{ name: test, endpoint: "${natsUrl()}" }]`,
      `  sqlite: [{ name: local, endpoint: "file:mailbox.sqlite" }]`,
      '',
    ].join('\n'),
  );
  for (const { name, slot } of Object.values(STORES)) {
    writeFileSync(
      join(dir, 'ns', `${name}.yaml`),
      [
        `namespace: ${name}`,
        'team: platform',
        'patterns:',
        '  - name: events',
        '    type: producer',
        '    slots: { sink: { backend: nats } }',
        '    settings: { topic: orders }',
        '  - name: inbox',
        '    type: mailbox',
        `    slots: { source: { backend: nats }, store: ${slot} }`,
        '    settings: { topic: orders, indexed_headers: [order-id], retention: 30d }',
        '',
      ].join('\n'),
    );
  }
  return { catalog, pgCredentials };
}

let proxy: RunningServer;
let endpoint: string;

await describeWithServices(['nats', 'postgres'], 'mailbox through the proxy', () => {
  beforeAll(async () => {
    await ensureBuilt();
    const { catalog, pgCredentials } = writeFiles();
    proxy = await startPrismServer(
      [
        'proxy',
        'serve',
        '--namespaces',
        join(dir, 'ns'),
        '--backends',
        catalog,
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
      ],
      'prism proxy serving',
      { PRISM_E2E_PG_CREDENTIALS: pgCredentials },
    );
    endpoint = `127.0.0.1:${proxy.ready.port as number}`;
  }, 120_000);

  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
  });

  const cli = (namespace: string, ...args: string[]) =>
    runCli(['mailbox', ...args, '-n', namespace, '--proxy', endpoint], { env: { PRISM_HOME: cliHome } });

  for (const [store, { name }] of Object.entries(STORES)) {
    it(`finds, fetches and deletes published messages with prismctl (${store} store)`, async () => {
      const client = new DataClient(endpoint, { namespace: name });
      const published: string[] = [];
      try {
        for (let i = 0; i < 6; i++) {
          const res = await client.publish({
            payload: Buffer.from(`order ${i}`),
            headers: { 'order-id': `o-${i % 2}` },
            correlationId: `checkout-${i}`,
          });
          published.push(res.messageId);
        }
      } finally {
        client.close();
      }

      const query = async (...args: string[]) => {
        const { stdout, stderr, code } = await cli(name, 'query', '--json', ...args);
        expect(stderr).toBe('');
        expect(code).toBe(0);
        return JSON.parse(stdout) as {
          messages: Array<{ envelope: { messageId: string } }>;
          nextPageToken: string;
        };
      };
      await eventually(
        async () => (await query('--since', '1h')).messages.length === 6,
        20_000,
        'the six messages in the mailbox',
      );
      const odd = await query('--since', '1h', '--header', 'order-id=o-1', '--oldest');
      expect(odd.messages.map((m) => m.envelope.messageId)).toEqual([
        published[1],
        published[3],
        published[5],
      ]);
      const paged = await query('--limit', '4');
      expect(paged.messages.map((m) => m.envelope.messageId)).toEqual(published.slice(2).reverse());
      expect(paged.nextPageToken).not.toBe('');
      const rest = await query('--page-token', paged.nextPageToken);
      expect(rest.messages.map((m) => m.envelope.messageId)).toEqual([published[1], published[0]]);

      const got = await cli(name, 'get', published[2]!, '--json');
      expect(got.code).toBe(0);
      const message = JSON.parse(got.stdout) as {
        envelope: { payload: string; correlationId: string; headers: Record<string, string> };
        payloadSize: string;
      };
      expect(Buffer.from(message.envelope.payload, 'base64').toString()).toBe('order 2');
      expect(message.envelope.correlationId).toBe('checkout-2');
      expect(message.envelope.headers).toEqual({ 'order-id': 'o-0' });
      expect(message.payloadSize).toBe('7');

      const raw = await cli(name, 'get', published[4]!);
      expect([raw.code, raw.stdout]).toEqual([0, 'order 4']);

      const missing = await cli(name, 'get', 'no-such-message');
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`holds no message "no-such-message"`);

      const deleted = await cli(name, 'delete', published[0]!, published[1]!, '--json');
      expect(JSON.parse(deleted.stdout)).toEqual({ deleted: 2 });
      const byFilter = await cli(name, 'delete', '--correlation-id', 'checkout-5');
      expect(byFilter.stdout).toBe('1 message deleted\n');
      expect((await query()).messages.map((m) => m.envelope.messageId)).toEqual(
        [published[2], published[3], published[4]].reverse(),
      );

      const everything = await cli(name, 'delete');
      expect(everything.code).toBe(1);
      expect(everything.stderr).toContain(
        'a delete needs message ids or a filter with at least one condition',
      );

      const unindexed = await cli(name, 'query', '--header', 'region=eu');
      expect(unindexed.code).toBe(1);
      expect(unindexed.stderr).toContain('header "region" is not indexed in this mailbox');
    });
  }

  it('refuses a Delete with both ids and a filter, or with more than 1000 ids', async () => {
    const mailbox = new MailboxClient(endpoint, { namespace: STORES.sqlite.name });
    try {
      await expect(mailbox.delete({ messageIds: ['a'], filter: { tenant: 'acme' } })).rejects.toMatchObject({
        code: 'E_INVALID_ARGUMENT',
        message: 'a delete takes message ids or a filter, not both',
      });
      const ids = Array.from({ length: 1001 }, (_, i) => `id-${i}`);
      await expect(mailbox.delete({ messageIds: ids })).rejects.toMatchObject({
        code: 'E_INVALID_ARGUMENT',
        message: 'a delete takes at most 1000 message ids, got 1001',
      });
    } finally {
      mailbox.close();
    }
  });

  it('Watch through the proxy delivers what is stored after it is in place, once', async () => {
    const { name } = STORES.sqlite;
    const mailbox = new MailboxClient(endpoint, { namespace: name });
    const client = new DataClient(endpoint, { namespace: name });
    const stream = mailbox.watch({ filter: { headers: { 'order-id': 'watched' } } });
    const seen: string[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        stream.once('metadata', () => resolve());
        stream.once('error', reject);
      });
      stream.on('data', (res: MailboxWatchResponse) => seen.push(res.message!.envelope!.messageId));
      const metrics = await (
        await fetch(`http://127.0.0.1:${proxy.ready.httpPort as number}/metrics`)
      ).text();
      expect(metrics).toContain('\nprism_proxy_mailbox_watches 1\n');
      const expected: string[] = [];
      for (let i = 0; i < 4; i++) {
        const headers = { 'order-id': i % 2 === 0 ? 'watched' : 'other' };
        const res = await client.publish({ payload: Buffer.from(`w${i}`), headers });
        if (i % 2 === 0) expected.push(res.messageId);
      }
      await eventually(() => seen.length >= 2, 20_000, 'two watched messages');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(seen).toEqual(expected);
    } finally {
      stream.cancel();
      mailbox.close();
      client.close();
    }
  });

  it('prismctl mailbox watch prints each new message as JSON and stops after --max', async () => {
    const { name } = STORES.postgres;
    const child = spawn(
      process.execPath,
      [
        join(REPO_ROOT, 'bin/run.js'),
        'mailbox',
        'watch',
        '-n',
        name,
        '--proxy',
        endpoint,
        '--json',
        '--max',
        '2',
      ],
      { env: { ...process.env, PRISM_HOME: cliHome, NO_COLOR: '1' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    await eventually(() => stderr.includes('watching'), 20_000, 'the watch to be in place');
    const client = new DataClient(endpoint, { namespace: name });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 2; i++)
        ids.push((await client.publish({ payload: Buffer.from(`cli ${i}`) })).messageId);
    } finally {
      client.close();
    }
    expect(await exited).toBe(0);
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { envelope: { messageId: string } });
    expect(lines.map((l) => l.envelope.messageId)).toEqual(ids);
    expect(stderr).toContain('2 messages watched');
  });
});
