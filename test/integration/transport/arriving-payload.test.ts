/**
 * Subscribe answers around a payload still arriving (src/transport/payload-arrival.ts, written by
 * GrpcHttp2Server's writeArriving), as a client we did not write sees them: grpc-js. The message
 * arrives whole and byte-exact once the payload is complete, and not before; messages written
 * after it follow it in order; a payload that fails part-way never reaches the client as a
 * message: the call ends with UNAVAILABLE, or, when nothing of it was sent yet, the message is
 * left out and the stream goes on.
 */
import { create } from '@bufbuild/protobuf';
import {
  Client,
  credentials,
  makeGenericClientConstructor,
  status,
  type ServerWritableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvelopeSchema } from '../../../src/gen/prism/data/v1/envelope_pb.js';
import {
  Consumer,
  SubscribeRequestSchema,
  SubscribeResponseSchema,
  type SubscribeRequest,
  type SubscribeResponse,
} from '../../../src/gen/prism/data/v1/messaging_pb.js';
import { GrpcHttp2Server } from '../../../src/transport/grpc-http2-server.js';
import { createGrpcServer } from '../../../src/transport/grpc-server.js';
import {
  arrivingDeliveryPayload,
  type ArrivingWriter,
  type PayloadArrival,
} from '../../../src/transport/payload-arrival.js';
import { grpcServiceDefinition } from '../../../src/transport/service-definition.js';

const MAX = 8 * 1024 * 1024;
const SIZE = 3 * 1024 * 1024 + 17;
const ConsumerClient = makeGenericClientConstructor(grpcServiceDefinition(Consumer), 'Consumer');
const server = new GrpcHttp2Server({
  fallback: createGrpcServer(MAX),
  maxMessageBytes: MAX,
  serverStreams: ['/prism.data.v1.Consumer/Subscribe'],
});
let consumer: Client & Record<string, (...args: unknown[]) => unknown>;

/** The source bytes of the arriving payload; the handler copies them in as a store read would. */
const source = randomBytes(SIZE);
/** The handler's arrival of the current test, and how far to fill it before waiting. */
let current: { arrival: PayloadArrival; fill: (upTo: number) => Promise<void> } | undefined;

function arriving(): PayloadArrival {
  const arrival = arrivingDeliveryPayload(SIZE);
  current = {
    arrival,
    async fill(upTo) {
      const step = 100 * 1024;
      while (arrival.filled < upTo) {
        const n = Math.min(step, upTo - arrival.filled);
        arrival.payload.set(source.subarray(arrival.filled, arrival.filled + n), arrival.filled);
        arrival.progress(n);
        await new Promise((r) => setImmediate(r));
      }
    },
  };
  return arrival;
}

const response = (deliveryId: string, payload: Uint8Array) =>
  create(SubscribeResponseSchema, {
    deliveryId,
    subscriptionId: 's',
    message: create(EnvelopeSchema, { messageId: `m-${deliveryId}`, payload }),
  });

/** Subscribe by topic: an arriving payload (delivery 1), then a small one (2), then the end. */
function subscribe(call: ServerWritableStream<SubscribeRequest, SubscribeResponse>): void {
  const writer = call as unknown as ArrivingWriter &
    ServerWritableStream<SubscribeRequest, SubscribeResponse>;
  writer.writeArriving(response('1', arriving().payload), current!.arrival);
  writer.write(response('2', Buffer.from('after')));
  writer.end();
}

function readStream(): {
  messages: SubscribeResponse[];
  status: Promise<{ code: number; details: string }>;
} {
  const messages: SubscribeResponse[] = [];
  const call = consumer.subscribe!(create(SubscribeRequestSchema, { topic: 't' })) as NodeJS.EventEmitter;
  call.on('data', (m: SubscribeResponse) => messages.push(m));
  const ended = new Promise<{ code: number; details: string }>((resolve) => {
    call.on('error', (err: ServiceError) => resolve({ code: err.code, details: err.details }));
    call.on('status', (s: { code: number; details: string }) => {
      if (s.code === status.OK) resolve({ code: s.code, details: s.details });
    });
  });
  return { messages, status: ended };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  server.addService(grpcServiceDefinition(Consumer), { subscribe } as never);
  const port = await server.listen('127.0.0.1:0');
  consumer = new ConsumerClient(`127.0.0.1:${port}`, credentials.createInsecure(), {
    'grpc.max_receive_message_length': MAX,
  }) as typeof consumer;
});

afterAll(async () => {
  consumer.close();
  await server.close(1000);
});

describe('a Subscribe answer around a payload still arriving', () => {
  it('reaches the client whole and byte-exact only once the payload is complete, and the next message after it', async () => {
    const call = readStream();
    await pause(50);
    await current!.fill(SIZE);
    await pause(100);
    // Every byte has landed, but the payload is not checked yet: no message.
    expect(call.messages).toEqual([]);
    current!.arrival.completed();
    expect(await call.status).toEqual({ code: status.OK, details: 'OK' });
    expect(call.messages.map((m) => m.deliveryId)).toEqual(['1', '2']);
    expect(Buffer.from(call.messages[0]!.message!.payload).equals(source)).toBe(true);
    expect(call.messages[0]!.message!.messageId).toBe('m-1');
    expect(Buffer.from(call.messages[1]!.message!.payload).toString()).toBe('after');
  });

  it('ends the call with UNAVAILABLE, delivering no message, when the payload fails after part of it was sent', async () => {
    const call = readStream();
    await pause(50);
    await current!.fill(SIZE / 2);
    await pause(50);
    current!.arrival.failed(new Error('the store went away'));
    const ended = await call.status;
    expect(ended.code).toBe(status.UNAVAILABLE);
    expect(ended.details).toMatch(/could not be read to its end; it will be delivered again/);
    expect(ended.details).not.toMatch(/store went away/);
    expect(call.messages).toEqual([]);
  });

  it('leaves the message out and goes on when the payload fails before any of it was sent', async () => {
    const call = readStream();
    await pause(50);
    current!.arrival.failed(new Error('the store went away'));
    expect(await call.status).toEqual({ code: status.OK, details: 'OK' });
    expect(call.messages.map((m) => m.deliveryId)).toEqual(['2']);
  });
});
