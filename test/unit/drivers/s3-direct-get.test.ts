/**
 * The s3 driver's direct GetObject (src/drivers/objects/s3-direct-get.ts) against answers a real
 * S3 server cannot be made to give on demand: a body that breaks off, one longer than announced, a
 * chunked or compressed body, a head that never ends. The plain case against SeaweedFS is in the
 * objects conformance suite. The stand-in is a TCP server that writes a fixed response.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { signer } from './test-signer.js';
import { directGet, DirectGetConnections } from '../../../src/drivers/objects/s3-direct-get.js';

let server: Server | undefined;
let connections = new DirectGetConnections();
afterEach(async () => {
  connections.destroy();
  connections = new DirectGetConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

/** A server that answers every connection with `answer(socket, request text)`. */
async function serve(answer: (socket: Socket, request: string) => void, host = '127.0.0.1'): Promise<URL> {
  server = createServer((socket) => {
    let request = '';
    socket.on('data', (data: Buffer) => {
      request += data.toString('latin1');
      if (request.includes('\r\n\r\n')) answer(socket, request);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server!.listen(0, host, resolve));
  const address = server.address() as { port: number };
  return new URL(`http://${host.includes(':') ? `[${host}]` : host}:${address.port}`);
}

function get(endpoint: URL) {
  return directGet({
    endpoint,
    path: '/bucket/ns/claims/k',
    signer,
    connections,
    connectTimeoutMs: 1000,
    idleTimeoutMs: 1000,
  });
}

const head = (status: string, headers: Record<string, string | number>) =>
  `HTTP/1.1 ${status}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

describe('direct GetObject', () => {
  it('sends a signed GET and fills the target in order, the head and body in separate writes or one', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 7);
    let seen = '';
    const endpoint = await serve((socket, request) => {
      seen = request;
      socket.write(head('200 OK', { 'Content-Length': body.byteLength, 'x-amz-meta-a': 'b' }));
      socket.write(body.subarray(0, 1000));
      setTimeout(() => socket.end(body.subarray(1000)), 20);
    });
    const got = await get(endpoint);
    expect(got?.size).toBe(body.byteLength);
    expect(got?.headers.get('x-amz-meta-a')).toBe('b');
    const target = Buffer.alloc(body.byteLength);
    const views: Uint8Array[] = [];
    await got!.readInto(target, (view) => views.push(view));
    expect(target.equals(body)).toBe(true);
    expect(Buffer.concat(views).equals(body)).toBe(true);
    expect(seen).toMatch(/^GET \/bucket\/ns\/claims\/k HTTP\/1\.1\r\n/);
    expect(seen).toMatch(/\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//i);
  });

  it("leaves the close to the server, so each GET's TIME_WAIT is on the server's side", async () => {
    let clientPort = 0;
    let closed!: Promise<void>;
    const endpoint = await serve((socket) => {
      clientPort = socket.remotePort!;
      closed = new Promise((resolve) => socket.on('close', () => resolve()));
      socket.write(head('200 OK', { 'Content-Length': 5 }) + 'hello');
      setTimeout(() => socket.end(), 50);
    });
    const got = await get(endpoint);
    const target = Buffer.alloc(5);
    await got!.readInto(target);
    expect(target.toString()).toBe('hello');
    await closed;
    // This connection only: the same client port may be in TIME_WAIT towards another server.
    const connection = `( sport = :${clientPort} and dport = :${endpoint.port} )`;
    const waiting = execFileSync('ss', ['-Htan', 'state', 'time-wait', connection], { encoding: 'utf8' });
    expect(waiting.trim()).toBe('');
  });

  it('keeps a connection that delivered a whole body for the next GET, and asks again on a new one when the kept one fails', async () => {
    const requests: number[] = [];
    let accepted = 0;
    server = createServer((socket) => {
      const connection = ++accepted;
      let pending = '';
      socket.on('data', (data: Buffer) => {
        pending += data.toString('latin1');
        for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
          pending = pending.slice(end + 4);
          requests.push(connection);
          // The first connection's third request finds it closed, as a server's idle timeout would.
          if (connection === 1 && requests.length === 3) socket.destroy();
          else socket.write(head('200 OK', { 'Content-Length': 2 }) + 'ok');
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const endpoint = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    for (let i = 0; i < 3; i++) {
      const got = await get(endpoint);
      const target = Buffer.alloc(2);
      await got!.readInto(target);
      expect(target.toString()).toBe('ok');
    }
    expect(requests).toEqual([1, 1, 1, 2]);
  });

  it('does not keep a connection whose body was not read, or that the server closes', async () => {
    let accepted = 0;
    const endpoint = await serve((socket) => {
      accepted++;
      socket.write(head('200 OK', { 'Content-Length': 2, Connection: 'close' }) + 'ok');
    });
    const unread = await get(endpoint);
    unread!.release();
    const closing = await get(endpoint);
    await closing!.readInto(Buffer.alloc(2));
    await get(endpoint).then((got) => got!.readInto(Buffer.alloc(2)));
    expect(accepted).toBe(3);
  });

  it('reaches a store at an IPv6 address', async () => {
    let seen = '';
    const endpoint = await serve((socket, request) => {
      seen = request;
      socket.end(head('200 OK', { 'Content-Length': 2 }) + 'ok');
    }, '::1');
    const got = await get(endpoint);
    const target = Buffer.alloc(2);
    await got!.readInto(target);
    expect(target.toString()).toBe('ok');
    expect(seen).toMatch(/\r\nhost: \[::1\]:\d+\r\n/i);
  });

  it('rejects a body that breaks off before its announced length', async () => {
    const endpoint = await serve((socket) => {
      socket.end(head('200 OK', { 'Content-Length': 1000 }) + 'x'.repeat(10));
    });
    const got = await get(endpoint);
    await expect(got!.readInto(Buffer.alloc(1000))).rejects.toThrow(/closed the connection/);
  });

  it('rejects a body longer than announced', async () => {
    const endpoint = await serve((socket) => {
      socket.write(head('200 OK', { 'Content-Length': 10 }));
      setTimeout(() => socket.end('y'.repeat(5000)), 20);
    });
    const got = await get(endpoint);
    await expect(got!.readInto(Buffer.alloc(10))).rejects.toThrow(/more than the 10 bytes/);
  });

  it('rejects a connection that goes silent midway', async () => {
    const endpoint = await serve((socket) => {
      socket.write(head('200 OK', { 'Content-Length': 100 }) + 'z');
    });
    const got = await get(endpoint);
    await expect(got!.readInto(Buffer.alloc(100))).rejects.toThrow(/silent for 1000 ms/);
  });

  it.each([
    ['an error status', head('503 Slow Down', { 'Content-Length': 0 })],
    ['a missing object', head('404 Not Found', { 'Content-Length': 0 })],
    ['a chunked body', head('200 OK', { 'Transfer-Encoding': 'chunked' }) + '0\r\n\r\n'],
    ['a compressed body', head('200 OK', { 'Content-Length': 3, 'Content-Encoding': 'gzip' }) + 'abc'],
    ['no Content-Length', head('200 OK', {}) + 'abc'],
    ['not HTTP/1.1', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['a head that never ends', `HTTP/1.1 200 OK\r\n${'x-pad: 0123456789\r\n'.repeat(4000)}`],
  ])('leaves %s to the SDK (resolves undefined)', async (_what, response) => {
    const endpoint = await serve((socket) => socket.end(response));
    expect(await get(endpoint)).toBeUndefined();
  });

  it('leaves a store that does not answer to the SDK', async () => {
    const endpoint = await serve(() => undefined);
    server!.close();
    expect(await get(endpoint)).toBeUndefined();
  });

  it('does not speak TLS itself', async () => {
    expect(await get(new URL('https://127.0.0.1:1'))).toBeUndefined();
  });
});
