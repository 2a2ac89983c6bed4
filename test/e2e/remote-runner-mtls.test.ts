/**
 * A remote runner: `prismctl runner serve` on TCP with TLS and required client certificates, and a
 * proxy whose namespace names it in `remote_runner`. The proxy routes the pattern there over
 * mutual TLS; the runner believes x-prism-caller-bin only from a peer whose client certificate it
 * trusts, and refuses it (PERMISSION_DENIED) on a listener without client certificates.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  status,
  type ChannelCredentials,
  type ServiceError,
} from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { DataClient } from '../../src/client/data-client.js';
import { GetRequestSchema, KeyValue, type GetResponse } from '../../src/gen/prism/data/v1/keyvalue_pb.js';
import { grpcServiceDefinition } from '../../src/transport/service-definition.js';
import { CALLER_HEADER } from '../../src/runners/caller-header.js';
import { NAMESPACE_HEADER } from '../../src/transport/metadata.js';
import { ensureBuilt } from '../support/cli.js';
import { startPrismServer, startProxy, type RunningServer } from '../support/server-process.js';
import { describeWithService, redisUrl, uniqueName } from '../support/services.js';
import { makeTlsFiles, type TlsFiles } from '../support/tls-files.js';

const KeyValueClient = makeGenericClientConstructor(grpcServiceDefinition(KeyValue), 'KeyValue');
const dir = mkdtempSync(join(tmpdir(), 'prism-remote-runner-'));
const namespace = uniqueName('remote');
let tls: TlsFiles;
let runner: RunningServer | undefined;
let tlsOnlyRunner: RunningServer | undefined;
let proxy: RunningServer | undefined;

const nsYaml = (remote?: string) =>
  [
    `namespace: ${namespace}`,
    'team: platform',
    'patterns:',
    `  - { name: cache, type: keyvalue, slots: { store: { backend: redis } }${remote ? `, remote_runner: "${remote}"` : ''} }`,
    '',
  ].join('\n');

const runnerServe = (extra: string[]) =>
  startPrismServer(
    [
      ...['runner', 'serve', 'keyvalue', '--config', join(dir, 'runner.yaml')],
      ...['--backends', join(dir, 'backends.yaml'), '--listen', '127.0.0.1:0'],
      ...['--tls-cert', tls.server.cert, '--tls-key', tls.server.key, ...extra],
    ],
    'prism runner serving',
  );

/** A Get straight to a runner, with these credentials and, optionally, a caller header. */
function directGet(
  port: unknown,
  creds: ChannelCredentials,
  caller?: string,
): Promise<ServiceError | GetResponse> {
  const client = new KeyValueClient(`localhost:${String(port)}`, creds);
  const metadata = new Metadata();
  metadata.set(NAMESPACE_HEADER, namespace);
  if (caller !== undefined) metadata.set(CALLER_HEADER, Buffer.from(caller));
  return new Promise<ServiceError | GetResponse>((resolve) =>
    (client as never as Record<string, (...a: unknown[]) => void>).get!(
      create(GetRequestSchema, { key: 'greeting' }),
      metadata,
      { deadline: new Date(Date.now() + 10_000) },
      (err: ServiceError | null, res: GetResponse) => resolve(err ?? res),
    ),
  ).finally(() => client.close());
}

const trusted = () =>
  credentials.createSsl(readFileSync(tls.ca), readFileSync(tls.client.key), readFileSync(tls.client.cert));
const alice = JSON.stringify({ subject: 'alice', tenant: 't1', roles: ['reader'] });

await describeWithService('redis', 'a remote runner over TCP with mutual TLS', () => {
  beforeAll(async () => {
    await ensureBuilt();
    tls = await makeTlsFiles();
    mkdirSync(join(dir, 'ns'));
    writeFileSync(
      join(dir, 'backends.yaml'),
      `backends:\n  redis: [{ name: test, endpoint: "${redisUrl()}" }]\n`,
    );
    writeFileSync(join(dir, 'runner.yaml'), nsYaml());
    runner = await runnerServe(['--tls-client-ca', tls.ca]);
    writeFileSync(join(dir, 'ns', 'remote.yaml'), nsYaml(`127.0.0.1:${String(runner.ready.port)}`));
    proxy = await startProxy({ namespaces: join(dir, 'ns'), backends: join(dir, 'backends.yaml') }, [
      ...['--runner-tls-ca', tls.ca, '--runner-tls-cert', tls.client.cert],
      ...['--runner-tls-key', tls.client.key],
    ]);
  }, 120_000);

  afterAll(async () => {
    await proxy?.stop();
    await runner?.stop();
    await tlsOnlyRunner?.stop();
  });

  it('serves the pattern through the proxy from the remote runner', async () => {
    const client = new DataClient(`127.0.0.1:${String(proxy!.ready.port)}`, { namespace, timeoutMs: 10_000 });
    try {
      await client.set('greeting', Buffer.from('hello over mTLS'));
      const got = await client.get('greeting');
      expect([got.found, Buffer.from(got.value).toString()]).toEqual([true, 'hello over mTLS']);
    } finally {
      client.close();
    }
  });

  it('believes the caller header from a peer with a trusted client certificate', async () => {
    const ok = (await directGet(runner!.ready.port, trusted(), alice)) as GetResponse;
    expect([ok.found, Buffer.from(ok.value).toString()]).toEqual([true, 'hello over mTLS']);
    // Believed, so read: a header that is not a caller session is INVALID_ARGUMENT, not ignored.
    const bad = (await directGet(runner!.ready.port, trusted(), 'not json')) as ServiceError;
    expect([bad.code, bad.details]).toEqual([
      status.INVALID_ARGUMENT,
      `${CALLER_HEADER} is not a caller session`,
    ]);
  });

  it('refuses a client whose certificate another CA signed, at the handshake', async () => {
    const stranger = credentials.createSsl(
      readFileSync(tls.ca),
      readFileSync(tls.otherClient.key),
      readFileSync(tls.otherClient.cert),
    );
    const err = (await directGet(runner!.ready.port, stranger, alice)) as ServiceError;
    expect(err.code).toBe(status.UNAVAILABLE);
  });

  it('answers PERMISSION_DENIED to the caller header on a TLS listener without client certificates', async () => {
    tlsOnlyRunner = await runnerServe([]);
    const serverOnly = credentials.createSsl(readFileSync(tls.ca));
    const err = (await directGet(tlsOnlyRunner.ready.port, serverOnly, alice)) as ServiceError;
    expect(err.code).toBe(status.PERMISSION_DENIED);
    // Without the header the same call is served (anonymous).
    const ok = (await directGet(tlsOnlyRunner.ready.port, serverOnly)) as GetResponse;
    expect(ok.found).toBe(true);
  });

  it('answers UNAVAILABLE through the proxy once the remote runner is gone', async () => {
    await runner!.stop();
    runner = undefined;
    const client = new DataClient(`127.0.0.1:${String(proxy!.ready.port)}`, { namespace, timeoutMs: 10_000 });
    try {
      const err = await client.get('greeting').catch((e: unknown) => e as { code?: string });
      expect((err as { code?: string }).code).toBe('E_UNAVAILABLE');
    } finally {
      client.close();
    }
  });
});
