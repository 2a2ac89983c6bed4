import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { deviceLogin } from '../../src/auth/login.js';
import { DEFAULT_SCOPES } from '../../src/auth/oidc-config.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { DataClient } from '../../src/client/data-client.js';
import type { SubscribeResponse } from '../../src/gen/prism/data/v1/messaging_pb.js';
import { approveDeviceCode } from '../integration/auth/play-person.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { firstSubscribeEvent } from '../support/first-event.js';
import { startProxy, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

/**
 * Identity end to end: alice logs in with the device flow against the development provider (the
 * test plays the person), and the proxy admits her cached token only where her group is granted.
 */
describe('an authenticated data plane', () => {
  const idp = new DevIdp();
  const home = mkdtempSync(join(tmpdir(), 'prism-auth-home-'));
  const emptyHome = mkdtempSync(join(tmpdir(), 'prism-auth-empty-'));
  const granted = uniqueName('granted');
  const denied = uniqueName('denied');
  let proxy: RunningServer;
  let accessToken: string;
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
    accessToken = tokens.accessToken;
    const dir = mkdtempSync(join(tmpdir(), 'prism-auth-ns-'));
    const ns = (name: string, team: string) =>
      `namespace: ${name}\nteam: ${team}\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n  - name: events\n    type: producer\n    slots:\n      sink: { backend: memstore }\n    settings: { topic: orders }\n  - name: worker\n    type: consumer\n    slots:\n      source: { backend: memstore }\n    settings: { topic: orders, consumer_group: billing }\nauth:\n  enabled: true\n  issuer: ${issuer}\n  audiences: [${DEV_AUDIENCE}]\n`;
    writeFileSync(join(dir, 'granted.yaml'), ns(granted, 'commerce'));
    writeFileSync(join(dir, 'denied.yaml'), ns(denied, 'analytics'));
    proxy = await startProxy({ namespaces: dir }, ['--log-level', 'debug']);
    endpoint = `127.0.0.1:${proxy.ready.port as number}`;
  }, 60_000);

  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
    await idp.stop();
  });

  const cli = (args: string[], prismHome = home) =>
    runCli([...args, '--proxy', endpoint], { env: { PRISM_HOME: prismHome, PRISM_TOKEN: '' } });

  it('serves the logged-in user in a namespace her group owns, using the cached token', async () => {
    expect((await cli(['kv', 'set', '-n', granted, 'greeting', 'hello'])).code).toBe(0);
    const got = await cli(['kv', 'get', '-n', granted, 'greeting']);
    expect(got.code).toBe(0);
    expect(got.stdout).toBe('hello');
  });

  it('refuses her in a namespace she was not granted with PERMISSION_DENIED', async () => {
    const res = await cli(['kv', 'get', '-n', denied, 'greeting']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('E_PERMISSION_DENIED');
  });

  it('refuses a call without a token with UNAUTHENTICATED', async () => {
    const res = await cli(['kv', 'get', '-n', granted, 'greeting'], emptyHome);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('E_UNAUTHENTICATED');
  });

  it('ends a Subscribe without a token with UNAUTHENTICATED, before any message', async () => {
    const client = new DataClient(endpoint, { namespace: granted });
    try {
      await expect(firstSubscribeEvent(client, 2000)).resolves.toMatchObject({ code: 'E_UNAUTHENTICATED' });
    } finally {
      client.close();
    }
  });

  it('ends her Subscribe in a namespace she was not granted with PERMISSION_DENIED, before any message', async () => {
    const client = new DataClient(endpoint, { namespace: denied, token: accessToken });
    try {
      await expect(firstSubscribeEvent(client, 2000)).resolves.toMatchObject({
        code: 'E_PERMISSION_DENIED',
      });
    } finally {
      client.close();
    }
  });

  it('ends a PublishStream without a token with UNAUTHENTICATED, before any acknowledgement', async () => {
    const client = new DataClient(endpoint, { namespace: granted });
    try {
      const writer = client.publishStream();
      const sent = writer.publish({ payload: Buffer.from('x') });
      await expect(sent).rejects.toMatchObject({ code: 'E_UNAUTHENTICATED' });
      expect(writer.windowSize).toBeUndefined();
    } finally {
      client.close();
    }
  });

  it('ends her Consume stream in a namespace she was not granted with PERMISSION_DENIED, before any delivery', async () => {
    const client = new DataClient(endpoint, { namespace: denied, token: accessToken });
    try {
      const stream = client.consume({});
      const err = await new Promise<{ code?: number; message: string }>((resolve) => {
        stream.on('data', () => resolve({ message: 'a delivery arrived' }));
        stream.on('error', resolve);
      });
      expect(err.code).toBe(7);
      expect(err.message).toContain('may not consumer.subscribe');
    } finally {
      client.close();
    }
  });

  it('stamps the publisher’s session (subject and roles) into the consumer’s envelope', async () => {
    const client = new DataClient(endpoint, { namespace: granted, token: accessToken });
    const stream = client.subscribe({});
    try {
      const first = new Promise<SubscribeResponse>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      await client.publish({ payload: Buffer.from('order 42') });
      const envelope = (await first).message!;
      expect(envelope.session?.subject).toBe('alice@example.com');
      expect(envelope.session?.roles).toEqual(['commerce']);
    } finally {
      stream.cancel();
      client.close();
    }
  });

  it('never writes the token to the proxy’s log', () => {
    expect(proxy.logs()).not.toContain(accessToken);
    expect(proxy.logs()).not.toContain(accessToken.split('.')[2]!);
  });
});
