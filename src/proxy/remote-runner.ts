/**
 * A runner in another process, as the proxy's routing sees it: the same Runner, KeyValue,
 * Producer and Consumer APIs as an in-process runner, each call made over gRPC to the runner
 * process (prismctl runner serve) on its Unix socket. The proxy has already authenticated and
 * authorized the call; the caller travels in x-prism-caller-bin (src/runners/caller-header.ts).
 * Errors keep their PrismError code (x-prism-error-code), so the client sees the status it would
 * see in process; a runner process that is down or restarting is E_UNAVAILABLE at once.
 */
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescService,
  type MessageInitShape,
} from '@bufbuild/protobuf';
import { Metadata, status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import * as kv from '../gen/prism/data/v1/keyvalue_pb.js';
import * as msg from '../gen/prism/data/v1/messaging_pb.js';
import { isPrismError, PrismError } from '../errors.js';
import { fromServiceError } from '../transport/grpc-status.js';
import { NAMESPACE_HEADER, PATTERN_HEADER } from '../transport/metadata.js';
import { PublishStreamWriter } from '../client/publish-stream.js';
import { CALLER_HEADER, encodeCaller, setCaller } from '../runners/caller-header.js';
import type { CallError } from '../transport/status-codes.js';
import type { CallStreamChannel } from '../client/call-stream.js';
import type {
  CallerSession,
  ConsumerDelivery,
  ConsumerRunnerApi,
  ConsumerSubscription,
  KeyValueRunnerApi,
  ProducerRunnerApi,
  PublishInput,
  PublishLane,
  PublishResult,
} from '../runners/types.js';
import type { AnyClient } from '../client/proxy-call.js';

/** gRPC clients of one running runner process. */
export interface RunnerClients {
  /** Unary calls (KeyValue, Publish, PublishBatch): frames on a call stream (src/client/call-stream.ts). */
  unary: Pick<CallStreamChannel, 'unary' | 'close'>;
  keyValue: AnyClient;
  producer: AnyClient;
  consumer: AnyClient;
  health: AnyClient;
}

/** The launched process a remote runner reaches (src/proxy/launcher/launcher.ts). */
export interface RunnerProcessHandle {
  /** The clients of the process now serving; throws E_UNAVAILABLE while it is down or restarting. */
  clients(): RunnerClients;
  /** Resolves when the process serves again (or rejects once it was stopped for good). */
  serving(): Promise<void>;
}

/** How long a unary call to a runner process may take (the runner's own backend timeouts are shorter). */
const CALL_TIMEOUT_MS = 30_000;
/** An idle lane's PublishStream to the runner is closed after this long. */
const LANE_IDLE_MS = 5_000;

export class RemoteRunner implements KeyValueRunnerApi, ProducerRunnerApi, ConsumerRunnerApi {
  private readonly lanes = new WeakMap<PublishLane, { writer: PublishStreamWriter; idle?: NodeJS.Timeout }>();

  constructor(
    readonly namespace: string,
    readonly pattern: string,
    readonly type: string,
    private readonly process: RunnerProcessHandle,
    /** Launches (or joins) the runner process; `release` lets it go. */
    private readonly lifecycle: { acquire(): Promise<void>; release(): Promise<void> },
  ) {}

  start(): Promise<void> {
    return this.lifecycle.acquire();
  }

  stop(): Promise<void> {
    return this.lifecycle.release();
  }

  /** The runner process's grpc.health.v1 status of this pattern (its backends answer). */
  async health(): Promise<void> {
    const { health } = this.process.clients();
    const res = await new Promise<{ status?: unknown }>((resolve, reject) =>
      health.check!(
        { service: this.pattern },
        new Metadata(),
        { deadline: new Date(Date.now() + 2000) },
        (err: ServiceError | null, out: { status?: unknown }) =>
          err ? reject(this.toError(err)) : resolve(out),
      ),
    );
    if (res.status !== 'SERVING' && res.status !== 1)
      throw new PrismError('E_BACKEND_DOWN', `${this.label()}: a backend does not answer`);
  }

  // KeyValue

  async set(key: string, value: Uint8Array, ttlSeconds?: number): Promise<void> {
    await this.kv('set', { key, value, ttlSeconds: BigInt(ttlSeconds ?? 0) });
  }
  async get(key: string): Promise<Uint8Array | undefined> {
    const res = await this.kv<kv.GetResponse>('get', { key });
    return res.found ? res.value : undefined;
  }
  async delete(key: string): Promise<boolean> {
    return (await this.kv<kv.DeleteResponse>('delete', { key })).existed;
  }
  async exists(key: string): Promise<boolean> {
    return (await this.kv<kv.ExistsResponse>('exists', { key })).exists;
  }
  async batchSet(
    items: ReadonlyArray<{ key: string; value: Uint8Array; ttlSeconds?: number }>,
  ): Promise<void> {
    await this.kv('batchSet', {
      items: items.map((i) => ({ key: i.key, value: i.value, ttlSeconds: BigInt(i.ttlSeconds ?? 0) })),
    });
  }
  async batchGet(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    const res = await this.kv<kv.BatchGetResponse>('batchGet', { keys: [...keys] });
    return res.results.map((r) => (r.found ? r.value : undefined));
  }
  async batchDelete(keys: readonly string[]): Promise<boolean[]> {
    return (await this.kv<kv.BatchDeleteResponse>('batchDelete', { keys: [...keys] })).existed;
  }
  async scan(prefix: string, limit?: number, cursor?: string): Promise<{ keys: string[]; cursor?: string }> {
    const res = await this.kv<kv.ScanResponse>('scan', {
      prefix,
      limit: limit ?? 0,
      cursor: cursor ?? '',
    });
    return res.cursor ? { keys: res.keys, cursor: res.cursor } : { keys: res.keys };
  }
  async expire(key: string, ttlSeconds: number): Promise<boolean> {
    return (
      await this.kv<kv.ExpireResponse>('expire', {
        key,
        ttlSeconds: BigInt(ttlSeconds),
      })
    ).existed;
  }
  async ttl(key: string): Promise<number> {
    return Number((await this.kv<kv.GetTtlResponse>('getTtl', { key })).ttlMs);
  }
  async persist(key: string): Promise<boolean> {
    return (await this.kv<kv.PersistResponse>('persist', { key })).existed;
  }

  // Producer

  async publish(input: PublishInput, session: CallerSession, lane?: PublishLane): Promise<PublishResult> {
    if (lane) return resultOf(await this.publishOnLane(lane, input, session));
    const res = await this.unary<msg.PublishResponse>(
      msg.Producer,
      'publish',
      requestOf(input),
      this.headers(session, input),
    );
    return resultOf(res);
  }

  async publishBatch(inputs: readonly PublishInput[], session: CallerSession): Promise<PublishResult[]> {
    const res = await this.unary<msg.PublishBatchResponse>(
      msg.Producer,
      'publishBatch',
      { messages: inputs.map(requestOf) },
      this.headers(session, inputs[0]),
    );
    return res.results.map(resultOf);
  }

  /**
   * A lane (one client PublishStream) keeps its order by riding one PublishStream to the runner
   * process; the stream closes after LANE_IDLE_MS without unacknowledged messages.
   */
  private publishOnLane(
    lane: PublishLane,
    input: PublishInput,
    session: CallerSession,
  ): Promise<msg.PublishResponse> {
    if (lane.failed) return Promise.reject(lane.failed.err as Error);
    let entry = this.lanes.get(lane);
    if (!entry) {
      const call = this.process.clients().producer.publishStream!(
        this.metadata(session, input),
      ) as ClientDuplexStream<msg.PublishStreamRequest, msg.PublishStreamResponse>;
      entry = { writer: new PublishStreamWriter(call, (err) => this.toError(err)) };
      this.lanes.set(lane, entry);
    }
    const current = entry;
    const { writer } = current;
    clearTimeout(current.idle);
    const acked = writer.publish(requestOf(input));
    acked.then(
      () => {
        if (writer.unacknowledged > 0 || this.lanes.get(lane) !== current) return;
        current.idle = setTimeout(() => {
          if (this.lanes.get(lane) !== current || writer.unacknowledged > 0) return;
          this.lanes.delete(lane);
          void writer.end().catch(() => undefined);
        }, LANE_IDLE_MS);
        current.idle.unref();
      },
      (err: unknown) => {
        // A stream that failed (the runner process went away) serves this lane no more.
        if (this.lanes.get(lane) === current) this.lanes.delete(lane);
        if (!isPrismError(err) || err.code === 'E_UNAVAILABLE' || err.code === 'E_BACKEND_DOWN')
          lane.failed = { err };
      },
    );
    return acked;
  }

  // Consumer

  /**
   * One Consume stream to the runner process per subscription, acknowledgements in band. When the
   * process goes away the subscription reopens once it serves again, as an in-process runner
   * reconnects to its backend: unacknowledged messages are redelivered by the backend.
   */
  async subscribe(
    options: { topic?: string; group?: string; prefetch?: number },
    onDelivery: (delivery: ConsumerDelivery) => void | Promise<void>,
  ): Promise<ConsumerSubscription> {
    let closed = false;
    let call: ClientDuplexStream<msg.ConsumeRequest, msg.ConsumeResponse> | undefined;
    let chain: Promise<void> = Promise.resolve();
    let failedOnce: ((err: PrismError) => void) | undefined;
    const open = () => {
      const stream = this.process.clients().consumer.consume!(this.metadata()) as ClientDuplexStream<
        msg.ConsumeRequest,
        msg.ConsumeResponse
      >;
      call = stream;
      stream.write(
        create(msg.ConsumeRequestSchema, {
          kind: {
            case: 'open',
            value: create(msg.SubscribeRequestSchema, {
              topic: options.topic ?? '',
              group: options.group ?? '',
              maxInFlight: options.prefetch ?? 0,
            }),
          },
        }),
      );
      const settle = (id: string, success: boolean, reason = '') => {
        if (call !== stream || closed) return Promise.resolve();
        stream.write(
          create(msg.ConsumeRequestSchema, {
            kind: {
              case: 'ack',
              value: create(msg.ConsumeAckSchema, { deliveryIds: [id], success, reason }),
            },
          }),
        );
        return Promise.resolve();
      };
      stream.on('data', (res: msg.ConsumeResponse) => {
        for (const d of res.deliveries) {
          if (!d.message) continue;
          const delivery: ConsumerDelivery = {
            envelope: d.message,
            ack: () => settle(d.deliveryId, true),
            nack: (reason) => settle(d.deliveryId, false, reason),
          };
          chain = chain.then(() => onDelivery(delivery)).catch(() => undefined);
        }
      });
      stream.on('error', (err: ServiceError) => {
        if (closed || err.code === status.CANCELLED) return;
        failedOnce?.(this.toError(err));
        failedOnce = undefined;
        if (call === stream) void reopen();
      });
      stream.on('end', () => {
        if (!closed && call === stream) void reopen();
      });
    };
    const reopen = async () => {
      call = undefined;
      while (!closed) {
        try {
          await this.process.serving();
          if (!closed) open();
          return;
        } catch {
          return; // stopped for good: the runner (and its subscriptions) are going away
        }
      }
    };
    // The first open must work (so a refused subscription fails the caller's Subscribe); an early
    // failure, within a moment, is reported as the subscription's own.
    await new Promise<void>((resolve, reject) => {
      failedOnce = reject;
      open();
      setTimeout(() => {
        failedOnce = undefined;
        resolve();
      }, 100).unref();
    });
    return {
      close: async () => {
        closed = true;
        const stream = call;
        call = undefined;
        if (stream) {
          await new Promise<void>((resolve) => {
            stream.on('status', () => resolve());
            stream.end();
            setTimeout(() => {
              stream.cancel();
              resolve();
            }, 2000).unref();
          });
        }
      },
    };
  }

  private label(): string {
    return `${this.namespace}/${this.pattern}`;
  }

  private metadata(session?: CallerSession, input?: PublishInput): Metadata {
    const metadata = new Metadata();
    metadata.set(NAMESPACE_HEADER, this.namespace);
    metadata.set(PATTERN_HEADER, this.pattern);
    if (session) setCaller(metadata, session);
    if (input?.trace?.traceparent) metadata.set('traceparent', input.trace.traceparent);
    return metadata;
  }

  /** Plain headers of a unary call on the runner's GrpcHttp2Channel. */
  private headers(session?: CallerSession, input?: PublishInput): Record<string, string> {
    const headers: Record<string, string> = {
      [NAMESPACE_HEADER]: this.namespace,
      [PATTERN_HEADER]: this.pattern,
    };
    if (session) headers[CALLER_HEADER] = encodeCaller(session).toString('base64');
    if (input?.trace?.traceparent) headers.traceparent = input.trace.traceparent;
    return headers;
  }

  private kv<Res>(method: string, init: object): Promise<Res> {
    return this.unary<Res>(kv.KeyValue, method, init, this.headers());
  }

  private async unary<Res>(
    service: DescService,
    localName: string,
    init: object,
    headers: Record<string, string>,
  ): Promise<Res> {
    const method = methodOf(service, localName);
    const request = toBinary(method.input, create(method.input, init as never));
    const { unary } = this.process.clients();
    let response: Uint8Array;
    try {
      response = await unary.unary(method.path, request, headers, CALL_TIMEOUT_MS);
    } catch (err) {
      throw this.toError(err as CallError); // the channel rejects with CallErrors only
    }
    return fromBinary(method.output, response) as Res;
  }

  /** The runner's own PrismError; a dropped connection is this runner being unavailable. */
  private toError(err: CallError): PrismError {
    const prism = fromServiceError(err, this.label());
    if (prism.code !== 'E_UNREACHABLE') return prism;
    return new PrismError('E_UNAVAILABLE', `the runner process of ${this.label()} is unavailable`, {
      hint: 'the proxy restarts it; retry shortly',
    });
  }
}

const methods = new Map<string, { path: string; input: DescMessage; output: DescMessage }>();

/** A unary method of a service by its local name, with its HTTP/2 path. */
function methodOf(service: DescService, localName: string) {
  const key = `${service.typeName}.${localName}`;
  let found = methods.get(key);
  if (!found) {
    const m = service.methods.find((x) => x.localName === localName);
    if (!m) throw new Error(`${service.typeName} has no method ${localName}`);
    found = { path: `/${service.typeName}/${m.name}`, input: m.input, output: m.output };
    methods.set(key, found);
  }
  return found;
}

function requestOf(input: PublishInput): MessageInitShape<typeof msg.PublishRequestSchema> {
  return {
    topic: input.topic ?? '',
    payload: input.payload,
    contentType: input.contentType ?? '',
    correlationId: input.correlationId ?? '',
    headers: input.headers ?? {},
    messageId: input.messageId ?? '',
  };
}

function resultOf(res: msg.PublishResponse): PublishResult {
  return { messageId: res.messageId, publishedAtMs: Number(res.publishedAtMs), duplicate: res.duplicate };
}
