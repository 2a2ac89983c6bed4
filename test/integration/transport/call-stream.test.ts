/**
 * The call stream between the proxy and its runner processes (src/transport/call-frames.ts): unary
 * calls as frames on one HTTP/2 stream, from CallStreamChannel (the proxy's side) to
 * GrpcHttp2Server (the runner's), with the statuses, metadata, deadlines and cancellation of calls
 * on their own streams; and to a runner that only speaks plain gRPC (grpc-js), call by call.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { ServerUnaryCall, ServiceError, sendUnaryData } from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CallStreamChannel } from '../../../src/client/call-stream.js';
import { GrpcHttp2Channel } from '../../../src/client/grpc-http2.js';
import { PrismError } from '../../../src/errors.js';
import {
  GetRequestSchema,
  GetResponseSchema,
  KeyValue,
  type GetRequest,
  type GetResponse,
} from '../../../src/gen/prism/data/v1/keyvalue_pb.js';
import { GrpcHttp2Server } from '../../../src/transport/grpc-http2-server.js';
import { createGrpcServer, shutdownServer } from '../../../src/transport/grpc-server.js';
import { toServiceError } from '../../../src/transport/grpc-status.js';
import { grpcServiceDefinition } from '../../../src/transport/service-definition.js';
import { bindUnixServer } from '../../../src/transport/unix-socket.js';
import type { CallError } from '../../../src/transport/status-codes.js';

const MAX = 1024;
const GET = '/prism.data.v1.KeyValue/Get';
const cancelled: string[] = [];
const release: Array<() => void> = [];

/** Get: `fail` is a PrismError, `hang` never answers, `slow` answers when released; else its key. */
function get(call: ServerUnaryCall<GetRequest, GetResponse>, callback: sendUnaryData<GetResponse>): void {
  const { key } = call.request;
  call.on('cancelled', () => cancelled.push(key));
  if (key === 'fail') {
    callback(toServiceError(new PrismError('E_NOT_FOUND', 'no key fail')) as ServiceError, null);
  } else if (key === 'hang') {
    // answers never
  } else if (key === 'slow') {
    release.push(() =>
      callback(null, create(GetResponseSchema, { found: true, value: Buffer.from('late') })),
    );
  } else {
    const ns = String(call.metadata.get('x-prism-namespace')[0] ?? '');
    callback(null, create(GetResponseSchema, { found: true, value: Buffer.from(`${ns}/${key}`) }));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'prism-calls-'));
let n = 0;
const closers: Array<() => Promise<void>> = [];

async function runner(): Promise<{
  socket: string;
  server: GrpcHttp2Server;
  grpc: ReturnType<typeof createGrpcServer>;
}> {
  const socket = join(dir, `r${++n}.sock`);
  const grpc = createGrpcServer(MAX);
  const server = new GrpcHttp2Server({ fallback: grpc, maxMessageBytes: MAX });
  server.addService(grpcServiceDefinition(KeyValue), { get } as never);
  await server.listen(`unix:${socket}`);
  closers.push(async () => {
    await server.close(500);
    await shutdownServer(grpc, 500);
  });
  return { socket, server, grpc };
}

function channel(socket: string): CallStreamChannel {
  const c = new CallStreamChannel(GrpcHttp2Channel.to({ socketPath: socket }));
  closers.push(async () => c.close());
  return c;
}

async function call(c: CallStreamChannel, key: string, timeoutMs = 5000): Promise<string> {
  const request = toBinary(GetRequestSchema, create(GetRequestSchema, { key }));
  const bytes = await c.unary(GET, request, { 'x-prism-namespace': 'orders' }, timeoutMs);
  return Buffer.from(fromBinary(GetResponseSchema, bytes).value).toString();
}

async function failure(promise: Promise<unknown>): Promise<Error & CallError> {
  try {
    await promise;
  } catch (err) {
    return err as Error & CallError;
  }
  throw new Error('the call succeeded');
}

async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  release.splice(0);
});

describe('the call stream', () => {
  it('answers many calls at once, each with its own message and the metadata it carried', async () => {
    const c = channel((await runner()).socket);
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    expect(await Promise.all(keys.map((k) => call(c, k)))).toEqual(keys.map((k) => `orders/${k}`));
  });

  it("fails a call with the handler's status, details and metadata", async () => {
    const c = channel((await runner()).socket);
    const err = await failure(call(c, 'fail'));
    expect([err.code, err.details]).toEqual([5, 'no key fail']);
    expect(err.metadata?.get('x-prism-error-code')).toEqual(['E_NOT_FOUND']);
    expect(await call(c, 'after')).toBe('orders/after');
  });

  it('ends a call past its timeout with DEADLINE_EXCEEDED and cancels it in the runner', async () => {
    const c = channel((await runner()).socket);
    const before = cancelled.length;
    const err = await failure(call(c, 'hang', 150));
    expect([err.code, err.details]).toEqual([4, 'Deadline exceeded after 0.150s']);
    await until(() => cancelled.length > before);
    expect(cancelled.slice(before)).toEqual(['hang']);
  });

  it('answers an unknown method with UNIMPLEMENTED and keeps serving the others', async () => {
    const c = channel((await runner()).socket);
    const err = await failure(c.unary('/prism.data.v1.KeyValue/Nope', new Uint8Array(0), {}, 5000));
    expect([err.code, err.details]).toEqual([
      12,
      'The server does not implement the method /prism.data.v1.KeyValue/Nope',
    ]);
    expect(await call(c, 'next')).toBe('orders/next');
  });

  it('refuses a call above the message limit with RESOURCE_EXHAUSTED and serves the next one', async () => {
    const c = channel((await runner()).socket);
    const err = await failure(call(c, 'k'.repeat(2 * MAX)));
    expect(err.code).toBe(8);
    expect(err.details).toMatch(/^Received message larger than max \(\d+ vs 1024\)$/);
    expect(await call(c, 'small')).toBe('orders/small');
  });

  it('lets a call in flight finish when the runner stops, and refuses calls after with UNAVAILABLE', async () => {
    const { socket, server } = await runner();
    const c = channel(socket);
    const slow = call(c, 'slow');
    await until(() => release.length === 1);
    const closing = server.close(2000);
    release[0]!();
    expect(await slow).toBe('late');
    await closing;
    const err = await failure(call(c, 'x', 1000));
    expect(err.code).toBe(14);
  });

  it('fails calls in flight with UNAVAILABLE when the runner process goes away, and reaches its successor', async () => {
    const first = await runner();
    const c = channel(first.socket);
    const hung = failure(call(c, 'hang'));
    await new Promise((r) => setTimeout(r, 50)); // the call reached the runner
    first.grpc.forceShutdown();
    await first.server.close(0); // every connection destroyed, as when the process dies
    const err = await hung;
    expect([err.code, err.details]).toEqual([14, 'Connection dropped']);
    // The successor listens on the same socket, as a restarted runner process does.
    const grpc = createGrpcServer(MAX);
    const next = new GrpcHttp2Server({ fallback: grpc, maxMessageBytes: MAX });
    next.addService(grpcServiceDefinition(KeyValue), { get } as never);
    await next.listen(`unix:${first.socket}`);
    closers.push(async () => {
      await next.close(500);
      await shutdownServer(grpc, 500);
    });
    expect(await call(c, 'again')).toBe('orders/again');
  });

  it('makes each call on its own stream to a runner without the call stream (plain grpc-js)', async () => {
    const socket = join(dir, `old${++n}.sock`);
    const grpc = createGrpcServer(MAX);
    grpc.addService(grpcServiceDefinition(KeyValue), { get } as never);
    await bindUnixServer(grpc, `unix:${socket}`);
    closers.push(() => shutdownServer(grpc, 500));
    const c = channel(socket);
    expect(await Promise.all([call(c, 'a'), call(c, 'b')])).toEqual(['orders/a', 'orders/b']);
    const err = await failure(call(c, 'fail'));
    expect([err.code, err.details]).toEqual([5, 'no key fail']);
  });
});
