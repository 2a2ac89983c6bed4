import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataClient, type DataClientOptions } from '../../../src/client/data-client.js';
import { KeyValueClient, type KeyValueCalls } from '../../../src/client/kv-client.js';
import { ensureBuilt } from '../../support/cli.js';
import { freePort } from '../../support/ports.js';
import { startProxy, type RunningServer } from '../../support/server-process.js';
import { uniqueName } from '../../support/services.js';
import { makeTlsFiles, type TlsFiles } from '../../support/tls-files.js';

// KeyValueClient (node:http2 and a static codec; what the kv commands use) and DataClient
// (grpc-js and protobuf-es) are one contract: against a real proxy, every call gives both the same
// result, and every failure the same PrismError (code, message and hint).
const namespace = uniqueName('kv-http2');
let files: TlsFiles;
let plain: RunningServer;
let mutual: RunningServer;

beforeAll(async () => {
  await ensureBuilt();
  files = await makeTlsFiles();
  const config = join(mkdtempSync(join(tmpdir(), 'prism-kv-http2-')), 'ns.yaml');
  writeFileSync(
    config,
    `namespace: ${namespace}\nteam: platform\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`,
  );
  [plain, mutual] = await Promise.all([
    startProxy({ namespaces: config }),
    startProxy({ namespaces: config }, [
      ...['--tls-cert', files.server.cert, '--tls-key', files.server.key, '--tls-client-ca', files.ca],
    ]),
  ]);
}, 60_000);

afterAll(async () => {
  expect(await plain?.stop()).toBe(0);
  expect(await mutual?.stop()).toBe(0);
});

const plainEndpoint = () => `127.0.0.1:${plain.ready.port as number}`;
const mutualEndpoint = () => `grpcs://localhost:${mutual.ready.port as number}`;
const clientCert = () => ({ caFile: files.ca, certFile: files.client.cert, keyFile: files.client.key });

/** Runs `call` with both clients of `endpoint`; returns both outcomes, errors as plain fields. */
async function both<T>(
  endpoint: string,
  options: Partial<DataClientOptions>,
  call: (client: KeyValueCalls) => Promise<T>,
): Promise<{ http2: unknown; grpcJs: unknown }> {
  const settle = async (client: KeyValueCalls) => {
    try {
      return await call(client);
    } catch (err) {
      const { code, message, hint } = err as { code: string; message: string; hint?: string };
      return { error: { code, message, hint } };
    } finally {
      client.close();
    }
  };
  const opts = { namespace, ...options };
  const r = {
    http2: await settle(new KeyValueClient(endpoint, opts)),
    grpcJs: await settle(new DataClient(endpoint, opts)),
  };
  return r;
}

describe('KeyValueClient against a real proxy', () => {
  it('answers set, get, exists, ttl, scan and delete as DataClient does', async () => {
    const value = Buffer.from([0, 1, 2, 250, 255]);
    const outcome = await both(plainEndpoint(), {}, async (client) => {
      const key = `k/${Math.random()}`;
      const results = [
        await client.set(key, value, 3600),
        await client.get(key),
        await client.exists(key),
        await client.scan('k/', 10),
        await client.delete(key),
        await client.get(key),
        await client.ttl(key),
      ];
      const ttl = (results[6] as { ttlMs: bigint }).ttlMs;
      return { results: results.map((r, i) => (i === 3 ? { ...r, keys: [] } : r)), ttl, key };
    });
    const http2 = outcome.http2 as { results: unknown[]; ttl: bigint };
    expect(http2.results).toEqual([
      { $typeName: 'prism.data.v1.SetResponse' },
      { $typeName: 'prism.data.v1.GetResponse', found: true, value },
      { $typeName: 'prism.data.v1.ExistsResponse', exists: true },
      { $typeName: 'prism.data.v1.ScanResponse', keys: [], cursor: '' },
      { $typeName: 'prism.data.v1.DeleteResponse', existed: true },
      { $typeName: 'prism.data.v1.GetResponse', found: false, value: new Uint8Array(0) },
      { $typeName: 'prism.data.v1.GetTtlResponse', ttlMs: -2n },
    ]);
    expect(http2.results).toEqual((outcome.grpcJs as { results: unknown[] }).results);
  });

  it('returns the keys of a prefix, page by page with a cursor, as DataClient does', async () => {
    const prefix = `scan-${Math.random()}/`;
    const writer = new KeyValueClient(plainEndpoint(), { namespace });
    for (const n of [1, 2, 3]) await writer.set(`${prefix}${n}`, Buffer.from('v'));
    writer.close();
    const outcome = await both(plainEndpoint(), {}, async (client) => {
      const first = await client.scan(prefix, 2);
      const second = await client.scan(prefix, 2, first.cursor);
      return [...first.keys, ...second.keys];
    });
    expect(outcome.http2).toEqual([`${prefix}1`, `${prefix}2`, `${prefix}3`]);
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it("maps the proxy's status and error metadata to the same PrismError: an unknown namespace", async () => {
    const outcome = await both(plainEndpoint(), { namespace: 'no-such-namespace' }, (c) => c.get('k'));
    expect(outcome.http2).toMatchObject({
      error: { code: 'E_NOT_FOUND', message: "namespace 'no-such-namespace' is not served here" },
    });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it('maps an invalid argument from the proxy to the same PrismError: an empty key', async () => {
    const outcome = await both(plainEndpoint(), {}, (c) => c.get(''));
    expect(outcome.http2).toMatchObject({ error: { code: 'E_INVALID_ARGUMENT' } });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it("leaves the message limit to the server: a message above the proxy's 4 MiB is refused as too large, as with grpc-js", async () => {
    const outcome = await both(plainEndpoint(), {}, (c) => c.set('big', new Uint8Array(4 * 1024 * 1024)));
    expect(outcome.http2).toEqual({
      error: {
        code: 'E_PAYLOAD_TOO_LARGE',
        message: expect.stringMatching(
          new RegExp(
            `^${plainEndpoint().replaceAll('.', '\\.')} refused the message: Received message larger than max \\(41943\\d\\d vs\\.? 4194304\\)$`,
          ),
        ) as unknown as string,
        hint: "send smaller payloads, or raise the server's --max-message-size",
      },
    });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it('tells a closed port as "cannot reach the Prism proxy", with the hint', async () => {
    const endpoint = `127.0.0.1:${await freePort()}`;
    const outcome = await both(endpoint, {}, (c) => c.get('k'));
    expect(outcome.http2).toEqual({
      error: {
        code: 'E_UNREACHABLE',
        message: `cannot reach the Prism proxy at ${endpoint}`,
        hint: 'start one with `prismctl proxy serve` or `prismctl dev up`, or point --proxy / PRISM_PROXY_ENDPOINT at a running one',
      },
    });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  describe('a peer that accepts the connection and never answers', () => {
    let silent: Server;
    const sockets: Socket[] = [];
    beforeAll(async () => {
      silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });

    it('ends the call at its deadline with the unreachable error', async () => {
      const { port } = silent.address() as { port: number };
      const endpoint = `127.0.0.1:${port}`;
      const outcome = await both(endpoint, { timeoutMs: 300 }, (c) => c.get('k'));
      expect(outcome.http2).toMatchObject({
        error: { code: 'E_UNREACHABLE', message: `cannot reach the Prism proxy at ${endpoint}` },
      });
      expect(outcome.grpcJs).toEqual(outcome.http2);
    });
  });
});

describe('KeyValueClient with TLS against a real proxy requiring client certificates', () => {
  it('serves a client with the CA and a client certificate', async () => {
    const outcome = await both(mutualEndpoint(), { tls: clientCert() }, async (client) => {
      await client.set('tls-key', Buffer.from('over mTLS'));
      return Buffer.from((await client.get('tls-key')).value).toString();
    });
    expect(outcome).toEqual({ http2: 'over mTLS', grpcJs: 'over mTLS' });
  });

  it('names --ca-file when the server certificate is not trusted', async () => {
    const outcome = await both(mutualEndpoint(), {}, (c) => c.get('k'));
    expect(outcome.http2).toEqual({
      error: {
        code: 'E_UNREACHABLE',
        message: `the TLS certificate of ${mutualEndpoint()} is not trusted: self-signed certificate in certificate chain`,
        hint: "pass the CA that signed the server's certificate with --ca-file <ca.pem> (or PRISM_TLS_CA_FILE)",
      },
    });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it('says the certificate is for another name when --tls-server-name names one it lacks', async () => {
    const outcome = await both(
      mutualEndpoint(),
      { tls: { ...clientCert(), serverName: 'elsewhere.example' } },
      (c) => c.get('k'),
    );
    expect(outcome.http2).toMatchObject({
      error: {
        code: 'E_UNREACHABLE',
        message: expect.stringMatching(/^the TLS certificate of .* is for another name: /),
      },
    });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it('says the server requires a client certificate when none is given', async () => {
    const outcome = await both(mutualEndpoint(), { tls: { caFile: files.ca } }, (c) => c.get('k'));
    expect(outcome.http2).toEqual({
      error: {
        code: 'E_UNAUTHENTICATED',
        message: `${mutualEndpoint()} refused this client's certificate: tlsv13 alert certificate required`,
        hint: 'the server requires a client certificate (mTLS): pass --tls-client-cert and --tls-client-key',
      },
    });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it('says the server refused a client certificate another CA signed', async () => {
    const tls = { caFile: files.ca, certFile: files.otherClient.cert, keyFile: files.otherClient.key };
    const outcome = await both(mutualEndpoint(), { tls }, (c) => c.get('k'));
    expect(outcome.http2).toMatchObject({
      error: {
        code: 'E_UNAUTHENTICATED',
        message: expect.stringContaining("refused this client's certificate"),
      },
    });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it('tells a plaintext client of the TLS proxy that it may serve TLS', async () => {
    const endpoint = `127.0.0.1:${mutual.ready.port as number}`;
    const outcome = await both(endpoint, {}, (c) => c.get('k'));
    expect(outcome.http2).toEqual({
      error: {
        code: 'E_UNREACHABLE',
        message: `${endpoint} closed a plaintext connection: it may serve TLS`,
        hint: "dial grpcs://host:port (with --ca-file when a private CA signed the server's certificate)",
      },
    });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it('tells a TLS client of a plaintext proxy that it does not speak TLS', async () => {
    const endpoint = `grpcs://${plainEndpoint()}`;
    const outcome = await both(endpoint, { tls: { caFile: files.ca } }, (c) => c.get('k'));
    expect(outcome.http2).toMatchObject({
      error: { code: 'E_UNREACHABLE', message: expect.stringContaining(`${endpoint} does not speak TLS: `) },
    });
    expect(outcome.grpcJs).toEqual(outcome.http2);
  });

  it('fails before dialling when the CA file is missing, naming the flag', async () => {
    expect(
      () => new KeyValueClient(mutualEndpoint(), { namespace, tls: { caFile: '/nonexistent/ca.pem' } }),
    ).toThrow('cannot read --ca-file file /nonexistent/ca.pem');
  });
});
