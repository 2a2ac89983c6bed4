/**
 * The s3 driver's direct PutObject, HeadObject and DeleteObject (src/drivers/objects/s3-direct-http.ts) against what a real S3
 * server cannot be made to show or do on demand: which connection a request came on, a server
 * that goes silent, an error answer that is not S3's XML. Stores, refusals and a store that is
 * down against SeaweedFS are in the objects conformance suite. The stand-in is a `node:http`
 * server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { signer } from './test-signer.js';
import {
  directCall,
  directPut,
  directAgent,
  S3Refusal,
  type DirectPutRequest,
} from '../../../src/drivers/objects/s3-direct-http.js';

let server: Server | undefined;
const agent = directAgent();
afterEach(async () => {
  agent.destroy();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  socket: Socket;
}

/** A server that reads each request's body, then answers it with `answer`. */
async function serve(
  answer: (res: ServerResponse, seen: Seen) => void,
): Promise<{ endpoint: URL; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const one = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks),
        socket: req.socket,
      };
      seen.push(one);
      answer(res, one);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { endpoint: new URL(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`), seen };
}

function put(endpoint: URL, body: DirectPutRequest['body'], size: number, idleTimeoutMs = 2000) {
  return directPut({
    endpoint,
    path: '/bucket/ns/claims/k',
    headers: { 'content-type': 'application/octet-stream', 'x-amz-meta-prism-sha256': 'abc' },
    size,
    body,
    signer,
    agent,
    connectTimeoutMs: 1000,
    idleTimeoutMs,
  });
}

describe('direct PutObject', () => {
  it('sends a signed PUT of UNSIGNED-PAYLOAD with its metadata, and reuses the connection', async () => {
    const { endpoint, seen } = await serve((res) => res.end());
    const body = randomBytes(300_000);
    await put(endpoint, body, body.byteLength);
    async function* chunks() {
      yield body.subarray(0, 1000);
      yield body.subarray(1000);
    }
    await put(endpoint, chunks(), body.byteLength);
    expect(seen).toHaveLength(2);
    for (const request of seen) {
      expect(request.method).toBe('PUT');
      expect(request.url).toBe('/bucket/ns/claims/k');
      expect(request.body.equals(body)).toBe(true);
      expect(request.headers['content-length']).toBe(String(body.byteLength));
      expect(request.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(request.headers['x-amz-meta-prism-sha256']).toBe('abc');
      expect(request.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/.*SignedHeaders=[^,]*x-amz-meta-prism-sha256/,
      );
    }
    expect(seen[1]!.socket).toBe(seen[0]!.socket);
  });

  it("rejects with S3Refusal carrying the status and S3's error code", async () => {
    const { endpoint } = await serve((res) => {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>');
    });
    const err = await put(endpoint, Buffer.from('hello'), 5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3Refusal);
    expect(err).toMatchObject({ status: 403, code: 'AccessDenied', message: 'AccessDenied (HTTP 403)' });
  });

  it('names an error answer without an S3 code UnknownError', async () => {
    const { endpoint } = await serve((res) => {
      res.writeHead(502);
      res.end('bad gateway');
    });
    await expect(put(endpoint, Buffer.from('hello'), 5)).rejects.toMatchObject({
      status: 502,
      code: 'UnknownError',
    });
  });

  it("aborts the request when the body's iteration fails, rejecting with the body's error", async () => {
    let received = 0;
    let ended = false;
    server = createServer((req) => {
      req.on('data', (chunk: Buffer) => (received += chunk.byteLength));
      req.on('end', () => (ended = true));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const endpoint = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    async function* failing() {
      yield Buffer.alloc(1000);
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('the hash is not the announced one');
    }
    await expect(put(endpoint, failing(), 2000)).rejects.toThrow('the hash is not the announced one');
    await new Promise((r) => setTimeout(r, 50));
    expect(received).toBe(1000);
    expect(ended).toBe(false);
  });

  it('rejects when the store goes silent', async () => {
    const { endpoint } = await serve(() => undefined);
    await expect(put(endpoint, Buffer.from('hello'), 5, 200)).rejects.toThrow(
      /127\.0\.0\.1:\d+ was silent for 200 ms/,
    );
  });

  it("hands back a HEAD's and a DELETE's status and headers, signed, on the kept connection", async () => {
    const { endpoint, seen } = await serve((res, request) => {
      if (request.method === 'HEAD') {
        res.writeHead(200, { 'content-length': 42, 'x-amz-meta-prism-sha256': 'abc' });
        res.end();
      } else {
        res.writeHead(204);
        res.end();
      }
    });
    const call = (method: 'HEAD' | 'DELETE') =>
      directCall({
        method,
        endpoint,
        path: '/bucket/ns/claims/k',
        signer,
        agent,
        connectTimeoutMs: 1000,
        idleTimeoutMs: 1000,
      });
    const head = await call('HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('42');
    expect(head.headers['x-amz-meta-prism-sha256']).toBe('abc');
    expect((await call('DELETE')).status).toBe(204);
    expect(seen.map((r) => r.method)).toEqual(['HEAD', 'DELETE']);
    expect(seen[1]!.socket).toBe(seen[0]!.socket);
    for (const request of seen) {
      expect(request.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
      expect(request.headers['x-amz-content-sha256']).toBe(
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      );
    }
  });

  it('rejects when nothing listens', async () => {
    const { endpoint } = await serve((res) => res.end());
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    await expect(put(endpoint, Buffer.from('hello'), 5)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
