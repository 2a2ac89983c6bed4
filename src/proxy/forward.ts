/**
 * Forwarding a data-plane call to the proxy that owns its namespace (docs/fleet.md, Routing).
 *
 * The proxy's data services are registered with identity (Buffer) serializers, and one server
 * interceptor decides per call, from its metadata: a call served here is decoded and encoded with
 * the method's protobuf schema in the interceptor (the handlers see messages as before); a call for
 * a namespace another proxy owns is passed through as raw bytes over one grpc-js generic call to
 * the owner, whatever its kind (unary and streaming calls are the same HTTP/2 stream on the wire),
 * with the caller's metadata unchanged plus the hop marker, and the owner's headers, messages and
 * status come back unchanged. The owner authenticates the caller itself: no new trust relation.
 */
import { fromBinary, toBinary, type DescMethod, type DescService } from '@bufbuild/protobuf';
import {
  Client,
  Metadata,
  ServerInterceptingCall,
  status as Status,
  type ClientDuplexStream,
  type MethodDefinition,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServiceDefinition,
  type StatusObject,
} from '@grpc/grpc-js';
import { PrismError } from '../errors.js';
import { dialTarget, type ClientTls } from '../transport/dial.js';
import { toServiceError } from '../transport/grpc-status.js';
import { metadataValue, NAMESPACE_HEADER } from '../transport/metadata.js';
import { FORWARDED_BY_HEADER, type RouteDecision } from './routes.js';

const identity = (value: Buffer): Buffer => value;

/** A grpc-js service definition whose methods take and give raw protobuf bytes. */
export function rawServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<Buffer, Buffer>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: method.localName,
    };
  }
  return definition as ServiceDefinition;
}

function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** One channel per peer proxy address, dialled with the fleet's TLS settings. */
export class PeerChannels {
  private readonly clients = new Map<string, Client>();

  constructor(private readonly tls: ClientTls | undefined) {}

  get(address: string): Client {
    let client = this.clients.get(address);
    if (!client) {
      const target = dialTarget(address, this.tls);
      client = new Client(target.endpoint.address, target.credentials, {
        ...target.options,
        // A peer that died comes back (or its successor takes its address) within seconds.
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2000,
      });
      this.clients.set(address, client);
    }
    return client;
  }

  /** Closes the channels to addresses no longer in the route table. */
  retain(addresses: ReadonlySet<string>): void {
    for (const [address, client] of this.clients) {
      if (addresses.has(address)) continue;
      client.close();
      this.clients.delete(address);
    }
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

export interface RoutingOptions {
  services: readonly DescService[];
  /** The local decision for a call, from its metadata (draining, served here, route table). */
  decide: (metadata: Metadata) => RouteDecision;
  peers: PeerChannels;
  /** This proxy's id, the hop marker's value. */
  selfId: () => string;
  /** Called when a forwarded call starts; the returned function when it ends, with its status. */
  begin: (
    namespace: string,
    streaming: boolean,
    abort: (reason: PrismError) => void,
  ) => (code: number) => void;
}

/** The server interceptor that serves a call here or forwards it to its owner. */
export function routingInterceptor(options: RoutingOptions): ServerInterceptor {
  const methods = new Map<string, DescMethod>();
  for (const service of options.services)
    for (const method of service.methods) methods.set(methodPath(method), method);
  return (descriptor, call) => {
    const method = methods.get(descriptor.path);
    if (!method) return new ServerInterceptingCall(call);
    let forwarding = false;
    let upstream: ClientDuplexStream<Buffer, Buffer> | undefined;
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const decision = options.decide(metadata);
            if (decision.kind === 'local') return nextMetadata(metadata);
            forwarding = true;
            try {
              upstream = forward(options, method, call, metadata, decision);
            } catch (err) {
              // E.g. the peer TLS files became unreadable: the call fails, the proxy does not.
              const error = toServiceError(err);
              call.sendStatus({
                code: error.code!,
                details: error.details!,
                metadata: error.metadata ?? null,
              });
              return;
            }
            call.startRead();
          },
          onReceiveMessage: (message: Buffer, nextMessage) => {
            if (!forwarding) {
              let decoded: unknown;
              try {
                decoded = fromBinary(method.input, message);
              } catch (err) {
                call.sendStatus({
                  code: Status.INTERNAL,
                  details: `Error deserializing request: ${(err as Error).message}`,
                });
                return;
              }
              return nextMessage(decoded);
            }
            // Flow control: read the next message once the owner took this one.
            upstream?.write(message, () => call.startRead());
          },
          onReceiveHalfClose: (next) => {
            if (!forwarding) return next();
            upstream?.end();
          },
          onCancel: () => upstream?.cancel(),
        }),
      sendMessage: (message, next) => {
        if (forwarding) return next(message);
        const bytes = toBinary(method.output, message as never);
        next(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      },
    });
  };
}

/** Opens the call to the owner and pipes its answers back to the caller. */
function forward(
  options: RoutingOptions,
  method: DescMethod,
  call: ServerInterceptingCallInterface,
  metadata: Metadata,
  decision: Extract<RouteDecision, { kind: 'forward' }>,
): ClientDuplexStream<Buffer, Buffer> {
  const namespace = metadataValue(metadata, NAMESPACE_HEADER) ?? '';
  const outgoing = metadata.clone();
  outgoing.remove('user-agent');
  outgoing.set(FORWARDED_BY_HEADER, options.selfId());
  const deadline = call.getDeadline();
  const upstream = options.peers
    .get(decision.address)
    .makeBidiStreamRequest<Buffer, Buffer>(
      methodPath(method),
      identity,
      identity,
      outgoing,
      deadline === Infinity ? {} : { deadline },
    );
  const streaming = method.methodKind !== 'unary';
  let answered = false;
  let ended = false;
  const finish = options.begin(namespace, streaming, (reason) => {
    if (ended) return;
    ended = true;
    upstream.cancel();
    const error = toServiceError(reason);
    call.sendStatus({ code: error.code!, details: error.details!, metadata: error.metadata ?? null });
    finish(error.code!);
  });
  upstream.on('metadata', (headers: Metadata) => {
    answered = true;
    call.sendMetadata(headers);
  });
  upstream.on('data', (message: Buffer) => {
    answered = true;
    upstream.pause();
    call.sendMessage(message, () => upstream.resume());
  });
  upstream.on('error', () => {
    // The same outcome arrives as 'status'.
  });
  // The owner's status goes back after its last message: grpc-js may emit it while messages are
  // still buffered in the paused stream.
  upstream.on('status', (status: StatusObject) => {
    const send = () => settle(status);
    if (upstream.readableEnded) send();
    else {
      upstream.once('end', send);
      upstream.once('close', send);
    }
  });
  const settle = (status: StatusObject) => {
    if (ended) return;
    ended = true;
    if (status.code === Status.UNAVAILABLE && !answered) {
      // No answer from the owner at all: it cannot be reached (or died); the caller may retry.
      const error = toServiceError(
        new PrismError(
          'E_UNAVAILABLE',
          `namespace '${namespace}' is owned by proxy '${decision.owner}' at ${decision.address}, which cannot be reached: ${status.details}`,
          { hint: 'retry: a proxy that stops heartbeating loses its partitions within the failover bound' },
        ),
      );
      call.sendStatus({ code: error.code!, details: error.details!, metadata: error.metadata ?? null });
    } else {
      call.sendStatus({ code: status.code, details: status.details, metadata: status.metadata });
    }
    finish(status.code);
  };
  return upstream;
}
