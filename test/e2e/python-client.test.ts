import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureBuilt, REPO_ROOT } from '../support/cli.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { describeWithService, redisUrl, uniqueName } from '../support/services.js';

/** The wire contract from another language: examples/clients/python with grpcio and stubs from proto/. */
await describeWithService('redis', 'the Python example client', () => {
  let proxy: RunningServer;
  const kvNamespace = uniqueName('py-kv');
  const msgNamespace = uniqueName('py-msg');
  const contractNamespace = uniqueName('py-contract');
  const mailboxNamespace = uniqueName('py-mailbox');

  beforeAll(async () => {
    await ensureBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'prism-python-'));
    writeFileSync(
      join(dir, 'kv.yaml'),
      `namespace: ${kvNamespace}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n`,
    );
    writeFileSync(
      join(dir, 'msg.yaml'),
      `namespace: ${msgNamespace}\nteam: platform\npatterns:\n  - name: events\n    type: producer\n    slots:\n      sink: { backend: memstore }\n    settings: { topic: greetings }\n  - name: worker\n    type: consumer\n    slots:\n      source: { backend: memstore }\n    settings: { topic: greetings, consumer_group: python }\n`,
    );
    // The messaging contract on Redis Streams (at-least-once), with a dead-letter slot.
    writeFileSync(
      join(dir, 'contract.yaml'),
      [
        `namespace: ${contractNamespace}`,
        'team: platform',
        'needs: { retention: 1h }',
        'patterns:',
        '  - name: events',
        '    type: producer',
        '    slots:',
        '      sink: { backend: redis }',
        '    settings: { topic: greetings, max_message_size: 64KiB }',
        '  - name: worker',
        '    type: consumer',
        '    slots:',
        '      source: { backend: redis }',
        '      dead-letter: { backend: redis }',
        '    settings: { topic: greetings, consumer_group: python, max_retries: 2, ack_timeout: 2s }',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'mailbox.yaml'),
      [
        `namespace: ${mailboxNamespace}`,
        'team: platform',
        'patterns:',
        '  - name: events',
        '    type: producer',
        '    slots: { sink: { backend: memstore } }',
        '    settings: { topic: greetings }',
        '  - name: inbox',
        '    type: mailbox',
        '    slots: { source: { backend: memstore }, store: { backend: sqlite } }',
        '    settings: { topic: greetings, indexed_headers: [order-id] }',
        '',
      ].join('\n'),
    );
    const catalog = join(mkdtempSync(join(tmpdir(), 'prism-python-catalog-')), 'backends.yaml');
    writeFileSync(
      catalog,
      `backends:\n  redis: [{ name: test, endpoint: "${redisUrl()}" }]\n  memstore: [{ name: local, endpoint: "memory://" }]\n  sqlite: [{ name: local, endpoint: "file:mailbox.sqlite" }]\n`,
    );
    proxy = await startPrismServer(
      [
        'proxy',
        'serve',
        '--namespaces',
        dir,
        '--backends',
        catalog,
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
      ],
      'prism proxy serving',
    );
  });

  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
  });

  it('sets and gets a key and publishes and consumes a message through the proxy', async () => {
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, 'examples/clients/python/run.sh'),
      [`127.0.0.1:${proxy.ready.port as number}`, kvNamespace, msgNamespace],
      { timeout: 300_000 },
    );
    expect(stdout).toContain('kv ok: python/');
    expect(stdout).toContain('publish/consume ok: ');
  }, 320_000);

  it('queries and gets messages from a mailbox through the proxy', async () => {
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, 'examples/clients/python/run.sh'),
      ['--mailbox', `127.0.0.1:${proxy.ready.port as number}`, mailboxNamespace],
      { timeout: 300_000 },
    );
    expect(stdout.trim().split('\n')).toEqual([
      'mailbox unindexed header: INVALID_ARGUMENT: header "region" is not indexed in this mailbox',
      'mailbox ok: 3 messages in 2 pages, newest first',
    ]);
  }, 320_000);

  it('keeps the messaging contract of proto/prism/data/v1 on Redis Streams, seen from grpcio', async () => {
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, 'examples/clients/python/run.sh'),
      ['--contract', `127.0.0.1:${proxy.ready.port as number}`, contractNamespace],
      { timeout: 300_000 },
    );
    expect(stdout.trim().split('\n')).toEqual([
      "status subscribe unknown namespace: NOT_FOUND: namespace 'no-such-namespace' is not served here",
      'status subscribe without namespace: INVALID_ARGUMENT: missing x-prism-namespace metadata',
      'status subscribe bad topic: INVALID_ARGUMENT: topic "greetings.*" does not match the topic syntax ^[A-Za-z0-9._-]{1,249}$',
      'status publish bad topic: INVALID_ARGUMENT: topic "bad topic" does not match the topic syntax ^[A-Za-z0-9._-]{1,249}$',
      'status publish above max_message_size: RESOURCE_EXHAUSTED: payload is 65537 bytes; the limit is 64KiB (65536 bytes, setting max_message_size)',
      "status publish above the proxy's request limit: RESOURCE_EXHAUSTED: Received message larger than max (4194326 vs 4194304)",
      'order: PublishBatch delivered in batch order, attempt 1',
      'redelivery: after a cancelled stream, attempt 2',
      'dead letter: greetings.dead-letter carries the payload, id, reason, original topic and attempts',
    ]);
  }, 320_000);
});
