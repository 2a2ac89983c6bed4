/**
 * The contract of GrpcHttp2Server (src/transport/grpc-http2-server.ts), the runner process's
 * server, as a client we did not write sees it: grpc-js. Unary calls are answered on node:http2
 * with the handler's message or status, the caller's metadata, deadlines, cancellation and the
 * message limit; server- and client-streaming methods named in its options are served on
 * node:http2 too; everything else (an unknown method, other streaming calls) is grpc-js's own answer.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import {
  Client,
  Metadata,
  credentials,
  makeGenericClientConstructor,
  status,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceError,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { HealthImplementation, service as healthService } from 'grpc-health-check';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GetRequestSchema,
  GetResponseSchema,
  KeyValue,
  type GetRequest,
  type GetResponse,
} from '../../../src/gen/prism/data/v1/keyvalue_pb.js';
import {
  Consumer,
  Producer,
  PublishUploadRequestSchema,
  PublishUploadResponseSchema,
  type PublishUploadRequest,
  type PublishUploadResponse,
  SubscribeRequestSchema,
  SubscribeResponseSchema,
  type SubscribeRequest,
  type SubscribeResponse,
} from '../../../src/gen/prism/data/v1/messaging_pb.js';
import { PrismError } from '../../../src/errors.js';
import { CALLS_PATH } from '../../../src/transport/call-frames.js';
import { QUEUE_BYTES } from '../../../src/transport/client-stream-exchange.js';
import { GrpcHttp2Server, RECEIVE_WINDOW_BYTES } from '../../../src/transport/grpc-http2-server.js';
import { createGrpcServer, shutdownServer } from '../../../src/transport/grpc-server.js';
import { toServiceError } from '../../../src/transport/grpc-status.js';
import { grpcServiceDefinition } from '../../../src/transport/service-definition.js';

const KeyValueClient = makeGenericClientConstructor(grpcServiceDefinition(KeyValue), 'KeyValue');
const HealthClient = makeGenericClientConstructor(healthService as never, 'Health');
const ConsumerClient = makeGenericClientConstructor(grpcServiceDefinition(Consumer), 'Consumer');
const ProducerClient = makeGenericClientConstructor(grpcServiceDefinition(Producer), 'Producer');
const SUBSCRIBE = '/prism.data.v1.Consumer/Subscribe';
const PUBLISH_UPLOAD = '/prism.data.v1.Producer/PublishUpload';
const MAX = 1024;

/** What the Get handler saw of calls that never got their answer. */
const cancelledKeys: string[] = [];

/** Get: `echo` returns the caller's x-echo header, `fail` a PrismError, `hang` never answers. */
function get(call: ServerUnaryCall<GetRequest, GetResponse>, callback: sendUnaryData<GetResponse>): void {
  const { key } = call.request;
  if (key === 'fail') {
    callback(toServiceError(new PrismError('E_NOT_FOUND', 'no key fail')) as ServiceError, null);
  } else if (key === 'hang') {
    call.on('cancelled', () => cancelledKeys.push(`${key}:${String(call.cancelled)}`));
  } else if (key === 'echo') {
    const text = String(call.metadata.get('x-echo')[0] ?? '');
    const bin = call.metadata.get('x-blob-bin')[0] as Buffer | undefined;
    const value = Buffer.concat([Buffer.from(`${text}|`), bin ?? Buffer.alloc(0)]);
    callback(null, create(GetResponseSchema, { found: true, value }));
  } else {
    callback(null, create(GetResponseSchema, { found: true, value: Buffer.from(`value of ${key}`) }));
  }
}

const grpc = createGrpcServer(MAX);
const server = new GrpcHttp2Server({ fallback: grpc, maxMessageBytes: MAX });
const health = new HealthImplementation({ '': 'SERVING' });
const socket = join(mkdtempSync(join(tmpdir(), 'prism-h2s-')), 's.sock');
let kv: Client & Record<string, (...args: unknown[]) => unknown>;
let tcp: Client & Record<string, (...args: unknown[]) => unknown>;
let port = 0;
const tcpServer = new GrpcHttp2Server({ fallback: createGrpcServer(MAX), maxMessageBytes: MAX });
/** As the proxy serves its clients: no call stream. */
const publicServer = new GrpcHttp2Server({
  fallback: createGrpcServer(MAX),
  maxMessageBytes: MAX,
  callStream: false,
});
let publicPort = 0;

function callGet(
  client: typeof kv,
  key: string,
  options: { metadata?: Metadata; deadlineMs?: number } = {},
): Promise<GetResponse> {
  return new Promise((resolve, reject) => {
    client.get!(
      create(GetRequestSchema, { key }),
      options.metadata ?? new Metadata(),
      options.deadlineMs ? { deadline: new Date(Date.now() + options.deadlineMs) } : {},
      (err: ServiceError | null, res: GetResponse) => (err ? reject(err) : resolve(res)),
    );
  });
}

async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded');
}

/** What the Subscribe handler saw of streams that the client left. */
const leftStreams: string[] = [];

/**
 * Subscribe by topic: `three` sends three deliveries (ids 1-3, the caller's x-echo as the
 * subscription) and ends, `fail` sends one and then a PrismError, `big` one above the limit,
 * `hang` nothing until the client leaves.
 */
function subscribe(call: ServerWritableStream<SubscribeRequest, SubscribeResponse>): void {
  const { topic } = call.request;
  const subscriptionId = String(call.metadata.get('x-echo')[0] ?? '');
  const delivery = (deliveryId: string) => create(SubscribeResponseSchema, { deliveryId, subscriptionId });
  if (topic === 'three') {
    for (const id of ['1', '2', '3']) call.write(delivery(id));
    call.end();
  } else if (topic === 'fail') {
    call.write(delivery('1'));
    const status = toServiceError(new PrismError('E_NOT_FOUND', 'no topic fail'));
    call.emit('error', Object.assign(new Error(status.details), status));
  } else if (topic === 'big') {
    call.write(delivery('x'.repeat(2 * MAX)));
  } else if (topic === 'hang') {
    call.on('cancelled', () => leftStreams.push(`cancelled:${String(call.cancelled)}`));
    call.on('close', () => leftStreams.push('close'));
  }
}

const streamServer = new GrpcHttp2Server({
  fallback: createGrpcServer(MAX),
  maxMessageBytes: MAX,
  serverStreams: [SUBSCRIBE],
});
let consumer: Client & Record<string, (...args: unknown[]) => unknown>;

function readStream(
  topic: string,
  options: { metadata?: Metadata; deadlineMs?: number } = {},
): { messages: SubscribeResponse[]; status: Promise<{ code: number; details: string }>; cancel(): void } {
  const messages: SubscribeResponse[] = [];
  const call = consumer.subscribe!(
    create(SubscribeRequestSchema, { topic }),
    options.metadata ?? new Metadata(),
    options.deadlineMs ? { deadline: new Date(Date.now() + options.deadlineMs) } : {},
  ) as NodeJS.EventEmitter & { cancel(): void };
  call.on('data', (m: SubscribeResponse) => messages.push(m));
  const ended = new Promise<{ code: number; details: string }>((resolve) => {
    call.on('error', (err: ServiceError) => resolve({ code: err.code, details: err.details }));
    call.on('status', (s: { code: number; details: string }) => {
      if (s.code === status.OK) resolve({ code: s.code, details: s.details });
    });
  });
  return { messages, status: ended, cancel: () => call.cancel() };
}

/** What the PublishUpload handler saw of calls that ended early, and how its iteration ended. */
const endedUploads: string[] = [];
/** Resolves the `slow` upload's wait, after which it reads its frames. */
let readSlowUpload: () => void = () => undefined;

/**
 * PublishUpload by the head's topic: `count` reads every frame and answers with the caller's
 * x-echo, the frames and the bytes (in order: each data frame's first byte is its number), `fail`
 * answers NOT_FOUND after the head, `hang` waits for frames until the call ends, `slow` reads the
 * head, waits for readSlowUpload(), then counts as `count` does.
 */
async function publishUpload(
  call: ServerReadableStream<PublishUploadRequest, PublishUploadResponse>,
  callback: sendUnaryData<PublishUploadResponse>,
): Promise<void> {
  const frames = call[Symbol.asyncIterator]() as AsyncIterator<PublishUploadRequest>;
  let topic = '';
  try {
    const first = await frames.next();
    if (!first.done && first.value.frame.case === 'head') topic = first.value.frame.value.topic;
    if (topic === 'fail') {
      callback(toServiceError(new PrismError('E_NOT_FOUND', 'no topic fail')) as ServiceError, null);
      return;
    }
    if (topic === 'hang')
      call.on('cancelled', () => endedUploads.push(`cancelled:${String(call.cancelled)}`));
    if (topic === 'slow') await new Promise<void>((resolve) => (readSlowUpload = resolve));
    let count = 0;
    let bytes = 0;
    let inOrder = true;
    for (let next = await frames.next(); next.done !== true; next = await frames.next()) {
      if (next.value.frame.case !== 'data') continue;
      inOrder &&= next.value.frame.value[0] === count % 256;
      count++;
      bytes += next.value.frame.value.byteLength;
    }
    const echo = String(call.metadata.get('x-echo')[0] ?? '');
    const messageId = `${echo}:${count}:${bytes}:${inOrder ? 'in order' : 'out of order'}`;
    callback(null, create(PublishUploadResponseSchema, { messageId }));
  } catch (err) {
    endedUploads.push(`${topic} iteration: ${(err as { code?: number }).code}`);
    callback(err as ServiceError, null);
  }
}

const UPLOAD_MAX = 64 * 1024;
const uploadServer = new GrpcHttp2Server({
  fallback: createGrpcServer(UPLOAD_MAX),
  maxMessageBytes: UPLOAD_MAX,
  clientStreams: [PUBLISH_UPLOAD],
});
let producer: Client & Record<string, (...args: unknown[]) => unknown>;
let uploadPort = 0;

const head = (topic: string) =>
  create(PublishUploadRequestSchema, { frame: { case: 'head', value: { topic } } });
/** Data frame number `n` of `size` bytes, each byte n. */
const dataFrame = (n: number, size: number) =>
  create(PublishUploadRequestSchema, { frame: { case: 'data', value: Buffer.alloc(size, n % 256) } });

/** Sends the frames on a grpc-js client stream; resolves with the answer or the status. */
function upload(
  frames: PublishUploadRequest[],
  options: { metadata?: Metadata; deadlineMs?: number; end?: boolean } = {},
): { answer: Promise<PublishUploadResponse>; cancel(): void } {
  let call: { write(m: unknown): boolean; end(): void; cancel(): void } | undefined;
  const answer = new Promise<PublishUploadResponse>((resolve, reject) => {
    call = producer.publishUpload!(
      options.metadata ?? new Metadata(),
      options.deadlineMs ? { deadline: new Date(Date.now() + options.deadlineMs) } : {},
      (err: ServiceError | null, res: PublishUploadResponse) => (err ? reject(err) : resolve(res)),
    ) as typeof call;
  });
  for (const frame of frames) call!.write(frame);
  if (options.end !== false) call!.end();
  return { answer, cancel: () => call!.cancel() };
}

beforeAll(async () => {
  uploadServer.addService(grpcServiceDefinition(Producer), { publishUpload } as never);
  uploadPort = await uploadServer.listen('127.0.0.1:0');
  producer = new ProducerClient(`127.0.0.1:${uploadPort}`, credentials.createInsecure()) as typeof producer;
  streamServer.addService(grpcServiceDefinition(Consumer), { subscribe } as never);
  const streamPort = await streamServer.listen('127.0.0.1:0');
  consumer = new ConsumerClient(`127.0.0.1:${streamPort}`, credentials.createInsecure()) as typeof consumer;
  server.addService(grpcServiceDefinition(KeyValue), { get } as never);
  health.addToServer(grpc);
  await server.listen(`unix:${socket}`);
  kv = new KeyValueClient(`unix:${socket}`, credentials.createInsecure()) as typeof kv;
  tcpServer.addService(grpcServiceDefinition(KeyValue), { get } as never);
  port = await tcpServer.listen('127.0.0.1:0');
  tcp = new KeyValueClient(`127.0.0.1:${port}`, credentials.createInsecure()) as typeof kv;
  publicServer.addService(grpcServiceDefinition(KeyValue), { get } as never);
  publicPort = await publicServer.listen('127.0.0.1:0');
});

afterAll(async () => {
  producer.close();
  await uploadServer.close(1000);
  consumer.close();
  await streamServer.close(1000);
  kv.close();
  tcp.close();
  await server.close(1000);
  await shutdownServer(grpc, 1000);
  await tcpServer.close(1000);
  await publicServer.close(1000);
});

describe('GrpcHttp2Server, unary calls answered on node:http2', () => {
  it("answers with the handler's message, on a Unix socket and on TCP", async () => {
    const res = await callGet(kv, 'a');
    expect(Buffer.from(res.value).toString()).toBe('value of a');
    expect(port).toBeGreaterThan(0);
    const overTcp = await callGet(tcp, 'b');
    expect(Buffer.from(overTcp.value).toString()).toBe('value of b');
  });

  it("hands the handler the caller's metadata, binary values decoded", async () => {
    const metadata = new Metadata();
    metadata.set('x-echo', 'hello');
    metadata.set('x-blob-bin', Buffer.from([0, 1, 2, 255]));
    const res = await callGet(kv, 'echo', { metadata });
    expect([...res.value]).toEqual([...Buffer.from('hello|'), 0, 1, 2, 255]);
  });

  it("sends a handler's error as its status, details and metadata", async () => {
    const err = await failure(callGet(kv, 'fail'));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toBe('no key fail');
    expect(err.metadata.get('x-prism-error-code')).toEqual(['E_NOT_FOUND']);
  });

  it('ends a call past its deadline with DEADLINE_EXCEEDED and cancels the handler', async () => {
    const before = cancelledKeys.length;
    const err = await failure(callGet(kv, 'hang', { deadlineMs: 150 }));
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    await until(() => cancelledKeys.length > before);
    expect(cancelledKeys.slice(before)).toEqual(['hang:true']);
  });

  it('tells the handler when the client cancels the call', async () => {
    const before = cancelledKeys.length;
    const err = await new Promise<ServiceError>((resolve) => {
      const call = kv.get!(create(GetRequestSchema, { key: 'hang' }), new Metadata(), (e: ServiceError) =>
        resolve(e),
      ) as {
        cancel(): void;
      };
      setTimeout(() => call.cancel(), 100);
    });
    expect(err.code).toBe(status.CANCELLED);
    await until(() => cancelledKeys.length > before);
    expect(cancelledKeys.slice(before)).toEqual(['hang:true']);
  });

  it('refuses a request above the message limit with RESOURCE_EXHAUSTED', async () => {
    const big = 'k'.repeat(2 * MAX);
    const tooLarge = await failure(callGet(kv, big));
    expect(tooLarge.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(tooLarge.details).toBe(`Received message larger than max (${2 * MAX + 3} vs ${MAX})`);
  });
});

describe('GrpcHttp2Server, everything else passed to grpc-js', () => {
  it('answers an unknown method with UNIMPLEMENTED', async () => {
    const err = await failure(
      new Promise((resolve, reject) =>
        kv.makeUnaryRequest(
          '/prism.data.v1.KeyValue/Nope',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          (e, r) => (e ? reject(e) : resolve(r)),
        ),
      ),
    );
    expect(err.code).toBe(status.UNIMPLEMENTED);
  });

  it("answers a gzip-compressed request through grpc-js's decompression", async () => {
    const gzip = new KeyValueClient(`127.0.0.1:${publicPort}`, credentials.createInsecure(), {
      'grpc.default_compression_algorithm': 2, // gzip
    }) as typeof kv;
    try {
      const res = await callGet(gzip, 'zipped');
      expect(Buffer.from(res.value).toString()).toBe('value of zipped');
    } finally {
      gzip.close();
    }
  });

  it('leaves the call stream to grpc-js (UNIMPLEMENTED) when it is off', async () => {
    const client = new KeyValueClient(`127.0.0.1:${publicPort}`, credentials.createInsecure()) as typeof kv;
    const unary = (c: typeof kv) =>
      new Promise((resolve, reject) =>
        c.makeUnaryRequest(
          CALLS_PATH,
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          (e, r) => (e ? reject(e) : resolve(r)),
        ),
      );
    try {
      expect((await failure(unary(client))).code).toBe(status.UNIMPLEMENTED);
      expect((await failure(unary(tcp))).code).not.toBe(status.UNIMPLEMENTED); // on where it is on
    } finally {
      client.close();
    }
  });

  it('serves a server-streaming call (grpc.health.v1 Watch) through, updates and cancel included', async () => {
    const client = new HealthClient(`unix:${socket}`, credentials.createInsecure()) as Client &
      Record<string, (...args: unknown[]) => unknown>;
    const seen: unknown[] = [];
    const stream = client.watch!({ service: '' }) as NodeJS.EventEmitter & { cancel(): void };
    const ended = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
    stream.on('data', (m: { status: unknown }) => seen.push(m.status));
    await until(() => seen.length === 1);
    health.setStatus('', 'NOT_SERVING');
    await until(() => seen.length === 2);
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
    stream.cancel();
    expect((await ended).code).toBe(status.CANCELLED);
    client.close();
  });
});

describe('GrpcHttp2Server, server-streaming methods named in serverStreams', () => {
  it('serves one on node:http2: the request, the metadata, every message in order, then OK', async () => {
    const metadata = new Metadata();
    metadata.set('x-echo', 'sub-1');
    const call = readStream('three', { metadata });
    expect(await call.status).toEqual({ code: status.OK, details: 'OK' });
    expect(call.messages.map((m) => [m.deliveryId, m.subscriptionId])).toEqual([
      ['1', 'sub-1'],
      ['2', 'sub-1'],
      ['3', 'sub-1'],
    ]);
  });

  it("ends a server stream with the status of the handler's error, after the messages it sent", async () => {
    const call = readStream('fail');
    expect(await call.status).toEqual({ code: status.NOT_FOUND, details: 'no topic fail' });
    expect(call.messages.map((m) => m.deliveryId)).toEqual(['1']);
  });

  it('refuses to send a server-stream message above the message limit (RESOURCE_EXHAUSTED)', async () => {
    const call = readStream('big');
    expect((await call.status).code).toBe(status.RESOURCE_EXHAUSTED);
    expect(call.messages).toEqual([]);
  });

  it('tells a server-streaming handler when the client cancels, and when its deadline passes', async () => {
    leftStreams.length = 0;
    const cancelled = readStream('hang');
    await new Promise((r) => setTimeout(r, 100));
    cancelled.cancel();
    expect((await cancelled.status).code).toBe(status.CANCELLED);
    await until(() => leftStreams.length === 2);
    expect(leftStreams).toEqual(['cancelled:true', 'close']);
    leftStreams.length = 0;
    const late = readStream('hang', { deadlineMs: 200 });
    expect((await late.status).code).toBe(status.DEADLINE_EXCEEDED);
    await until(() => leftStreams.length === 2);
    expect(leftStreams).toEqual(['cancelled:true', 'close']);
  });
});

describe('GrpcHttp2Server, client-streaming methods named in clientStreams', () => {
  it("hands the handler every message in order with the caller's metadata, and answers with its message", async () => {
    const metadata = new Metadata();
    metadata.set('x-echo', 'up-1');
    const frames = Array.from({ length: 40 }, (_, n) => dataFrame(n, 1000 + n));
    const { answer } = upload([head('count'), ...frames], { metadata });
    expect((await answer).messageId).toBe(`up-1:40:${40 * 1000 + (39 * 40) / 2}:in order`);
  });

  it('answers a stream that sends only its head, and one the handler answers before reading it all', async () => {
    expect((await upload([head('count')]).answer).messageId).toBe(':0:0:in order');
    const early = await failure(upload([head('fail'), dataFrame(0, 10)]).answer);
    expect([early.code, early.details]).toEqual([status.NOT_FOUND, 'no topic fail']);
  });

  it('refuses a message above the message limit with RESOURCE_EXHAUSTED, and the iteration fails with it', async () => {
    endedUploads.length = 0;
    const err = await failure(upload([head('count'), dataFrame(0, UPLOAD_MAX + 1)]).answer);
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/larger than max \(\d+ vs 65536\)/);
    await until(() => endedUploads.length === 1);
    expect(endedUploads).toEqual([`count iteration: ${status.RESOURCE_EXHAUSTED}`]);
  });

  it('tells the handler when the client cancels, and fails its iteration when the deadline passes', async () => {
    endedUploads.length = 0;
    const cancelled = upload([head('hang')], { end: false });
    await new Promise((r) => setTimeout(r, 100));
    cancelled.cancel();
    expect((await failure(cancelled.answer)).code).toBe(status.CANCELLED);
    await until(() => endedUploads.length === 1);
    expect(endedUploads).toEqual(['cancelled:true']);
    // The deadline from a client that does not enforce it itself (grpc-js would cancel too).
    endedUploads.length = 0;
    const session = connect(`http://127.0.0.1:${uploadPort}`);
    try {
      const late = rawUpload(session, { 'grpc-timeout': '200m' });
      await late.send([head('hang')], { end: false });
      expect((await late.answer).status).toBe(String(status.DEADLINE_EXCEEDED));
      await until(() => endedUploads.length === 2);
      expect(endedUploads).toEqual(['cancelled:true', `hang iteration: ${status.CANCELLED}`]);
    } finally {
      session.close();
    }
  });

  it('holds a client back by HTTP/2 flow control while the handler does not read, and loses nothing', async () => {
    const session = connect(`http://127.0.0.1:${uploadPort}`);
    try {
      const call = rawUpload(session);
      // 8 MiB in 32 KiB frames, each written once the last one went out: more than the queue and
      // the HTTP/2 window together.
      const count = 256;
      const size = 32 * 1024;
      const writing = call.send([
        head('slow'),
        ...Array.from({ length: count }, (_, n) => dataFrame(n, size)),
      ]);
      await until(() => call.sent() >= QUEUE_BYTES);
      await new Promise((r) => setTimeout(r, 500));
      expect(call.sent()).toBeLessThanOrEqual(QUEUE_BYTES + RECEIVE_WINDOW_BYTES + 4 * size);
      readSlowUpload();
      await writing;
      expect((await call.answer).body).toContain(`:${count}:${count * size}:in order`);
    } finally {
      session.close();
    }
  });

  it('stops a client still sending once it has its answer, with RST_STREAM NO_ERROR after the status', async () => {
    const session = connect(`http://127.0.0.1:${uploadPort}`);
    try {
      const call = rawUpload(session);
      const count = 256;
      const size = 32 * 1024;
      void call.send([head('fail'), ...Array.from({ length: count }, (_, n) => dataFrame(n, size))]);
      const answer = await call.answer;
      expect([answer.status, answer.rstCode]).toEqual([String(status.NOT_FOUND), constants.NGHTTP2_NO_ERROR]);
      expect(call.sent()).toBeLessThan(count * size);
    } finally {
      session.close();
    }
  });
});

/**
 * A PublishUpload from node:http2 itself: `send` writes each frame once the last one went out
 * (and ends the stream unless told not to), `sent` counts the bytes that went, `answer` has the response body, the
 * grpc-status and the stream's RST_STREAM code once it closed.
 */
function rawUpload(session: ClientHttp2Session, headers: Record<string, string> = {}) {
  const stream = session.request({
    ':method': 'POST',
    ':path': PUBLISH_UPLOAD,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
  stream.on('error', () => undefined);
  let sent = 0;
  const chunks: Buffer[] = [];
  let grpcStatus: string | undefined;
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('response', (headers) => (grpcStatus ??= headers['grpc-status'] as string | undefined));
  stream.on('trailers', (trailers) => (grpcStatus ??= trailers['grpc-status'] as string | undefined));
  const answer = new Promise<{ body: string; status: string | undefined; rstCode: number | undefined }>(
    (resolve) =>
      stream.on('close', () =>
        resolve({
          body: Buffer.concat(chunks).toString('latin1'),
          status: grpcStatus,
          rstCode: stream.rstCode,
        }),
      ),
  );
  return {
    answer,
    sent: () => sent,
    async send(messages: PublishUploadRequest[], { end = true } = {}): Promise<void> {
      for (const message of messages) {
        const bytes = toBinary(PublishUploadRequestSchema, message);
        const frame = Buffer.alloc(5 + bytes.length);
        frame.writeUInt32BE(bytes.length, 1);
        frame.set(bytes, 5);
        const written = await new Promise<boolean>((resolve) =>
          stream.write(frame, (err) => resolve(err === undefined || err === null)),
        );
        if (!written) return;
        sent += frame.length;
      }
      if (end) stream.end();
    },
  };
}

describe('GrpcHttp2Server, HTTP/2 settings', () => {
  it('lets a client send 1 MiB on a stream and on its connection before the server reads it', async () => {
    const session = connect(`http://127.0.0.1:${publicPort}`);
    try {
      await once(session, 'remoteSettings');
      // The connection's window arrives as a WINDOW_UPDATE right after the settings.
      await until(() => session.state.remoteWindowSize === RECEIVE_WINDOW_BYTES);
      expect(session.remoteSettings.initialWindowSize).toBe(RECEIVE_WINDOW_BYTES);
    } finally {
      session.close();
    }
  });
});

async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
