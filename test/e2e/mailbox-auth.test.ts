/**
 * The mailbox's authorization through a verifying proxy: alice (group commerce) holds only read
 * on the namespace, so Query, Get and Watch serve her and Delete is PERMISSION_DENIED; without a
 * token every call, Watch included, is UNAUTHENTICATED.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { deviceLogin } from '../../src/auth/login.js';
import { DEFAULT_SCOPES } from '../../src/auth/oidc-config.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { MailboxClient } from '../../src/client/mailbox-client.js';
import type { ServiceError } from '@grpc/grpc-js';
import { approveDeviceCode } from '../integration/auth/play-person.js';
import { ensureBuilt } from '../support/cli.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

describe('mailbox authorization through the proxy', () => {
  const idp = new DevIdp();
  const home = mkdtempSync(join(tmpdir(), 'prism-mailbox-auth-home-'));
  const namespace = uniqueName('mbx-auth');
  let proxy: RunningServer;
  let token: string;
  let endpoint: string;

  beforeAll(async () => {
    await ensureBuilt();
    const issuer = await idp.start();
    const tokens = await deviceLogin(
      { issuer, clientId: 'prismctl', scopes: DEFAULT_SCOPES },
      new TokenCache(home),
      (p) => void approveDeviceCode(p.verificationUri, p.userCode, 'alice@example.com'),
      { intervalSeconds: 0.05 },
    );
    token = tokens.accessToken;
    const dir = mkdtempSync(join(tmpdir(), 'prism-mailbox-auth-ns-'));
    writeFileSync(
      join(dir, 'ns.yaml'),
      [
        `namespace: ${namespace}`,
        'team: platform',
        'patterns:',
        '  - name: inbox',
        '    type: mailbox',
        '    slots: { source: { backend: memstore }, store: { backend: sqlite } }',
        '    settings: { topic: orders }',
        'auth:',
        '  enabled: true',
        `  issuer: ${issuer}`,
        `  audiences: [${DEV_AUDIENCE}]`,
        'access:',
        '  owners: [{ team: platform }]',
        '  consumers: [{ subject: "group:commerce", permissions: [read] }]',
        '',
      ].join('\n'),
    );
    proxy = await startProxy({ namespaces: dir });
    endpoint = `127.0.0.1:${proxy.ready.port as number}`;
  }, 60_000);

  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
    await idp.stop();
  });

  /** The status a Watch ends with, or 'open' once the watch is in place. */
  function watchOutcome(client: MailboxClient): Promise<string> {
    const stream = client.watch({});
    return new Promise((resolve) => {
      stream.once('metadata', () => {
        stream.cancel();
        resolve('open');
      });
      stream.once('error', (err: ServiceError) => resolve(client.streamError(err).code));
    });
  }

  it('serves a reader Query, Get and Watch, and refuses her Delete', async () => {
    const client = new MailboxClient(endpoint, { namespace, token });
    try {
      expect((await client.query({})).messages).toEqual([]);
      await expect(client.get('missing')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
      expect(await watchOutcome(client)).toBe('open');
      await expect(client.delete({ messageIds: ['m-1'] })).rejects.toMatchObject({
        code: 'E_PERMISSION_DENIED',
        message: `alice@example.com may not mailbox.delete topic 'orders' in namespace '${namespace}' (no policy permits it)`,
      });
    } finally {
      client.close();
    }
  });

  it('refuses every call without a token, Watch included', async () => {
    const client = new MailboxClient(endpoint, { namespace });
    try {
      await expect(client.query({})).rejects.toMatchObject({ code: 'E_UNAUTHENTICATED' });
      await expect(client.delete({ messageIds: ['m-1'] })).rejects.toMatchObject({
        code: 'E_UNAUTHENTICATED',
      });
      expect(await watchOutcome(client)).toBe('E_UNAUTHENTICATED');
    } finally {
      client.close();
    }
  });
});
