/**
 * A runner process elsewhere (a pattern's `remote_runner`): `prismctl runner serve` on TCP with
 * TLS and required client certificates. The proxy reaches it with its --runner-tls-* client
 * certificate, so the runner believes the caller header it sends (src/runners/caller-header.ts).
 * Nobody here starts or restarts it: a runner that does not answer is UNAVAILABLE, and the
 * connection is made again on the next call.
 */
import { readFileSync } from 'node:fs';
import { makeGenericClientConstructor, credentials, type Client } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { KeyValue } from '../../gen/prism/data/v1/keyvalue_pb.js';
import { Consumer, Producer } from '../../gen/prism/data/v1/messaging_pb.js';
import { parseRemoteRunner } from '../../config/isolation.js';
import { PrismError } from '../../errors.js';
import { CLIENT_OPTIONS } from '../../transport/limits.js';
import { grpcServiceDefinition } from '../../transport/service-definition.js';
import type { RunnerClients, RunnerProcessHandle } from '../remote-runner.js';
import { GrpcHttp2Channel } from '../../client/grpc-http2.js';
import { CallStreamChannel } from '../../client/call-stream.js';

const KeyValueClient = makeGenericClientConstructor(grpcServiceDefinition(KeyValue), 'KeyValue');
const ProducerClient = makeGenericClientConstructor(grpcServiceDefinition(Producer), 'Producer');
const ConsumerClient = makeGenericClientConstructor(grpcServiceDefinition(Consumer), 'Consumer');
const HealthClient = makeGenericClientConstructor(healthService as never, 'Health');

/** The proxy's client side of mutual TLS to remote runners (proxy serve --runner-tls-*). */
export interface RemoteRunnerTls {
  /** PEM CA file the remote runners' server certificates chain to. */
  caFile: string;
  /** PEM client certificate and key the remote runners trust. */
  certFile: string;
  keyFile: string;
}

export class RemoteEndpoint implements RunnerProcessHandle {
  private set: (RunnerClients & { all: Client[] }) | undefined;

  constructor(
    readonly endpoint: string,
    private readonly tls: RemoteRunnerTls,
  ) {}

  /** Opens the clients (no connection yet: grpc-js and node:http2 connect on the first call). */
  open(): void {
    if (this.set) return;
    const address = parseRemoteRunner(this.endpoint);
    if (!address) throw new PrismError('E_USAGE', `remote_runner '${this.endpoint}' is not host:port`);
    const read = (file: string, what: string) => {
      try {
        return readFileSync(file);
      } catch (err) {
        throw new PrismError('E_USAGE', `cannot read ${what} ${file}: ${(err as Error).message}`);
      }
    };
    const ca = read(this.tls.caFile, '--runner-tls-ca');
    const cert = read(this.tls.certFile, '--runner-tls-cert');
    const key = read(this.tls.keyFile, '--runner-tls-key');
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    const target = `${host}:${address.port}`;
    const creds = credentials.createSsl(ca, key, cert);
    const keyValue = new KeyValueClient(target, creds, CLIENT_OPTIONS);
    const producer = new ProducerClient(target, creds, CLIENT_OPTIONS);
    const consumer = new ConsumerClient(target, creds, CLIENT_OPTIONS);
    const health = new HealthClient(target, creds, CLIENT_OPTIONS);
    this.set = {
      unary: new CallStreamChannel(GrpcHttp2Channel.to({ hostPort: target, tls: { ca, cert, key } })),
      keyValue: keyValue as never,
      producer: producer as never,
      consumer: consumer as never,
      health: health as never,
      all: [keyValue, producer, consumer, health],
    };
  }

  clients(): RunnerClients {
    if (!this.set) throw new PrismError('E_UNAVAILABLE', `the remote runner at ${this.endpoint} is not open`);
    return this.set;
  }

  /** A remote runner is reached on demand: a subscription reopens at once (after a pause). */
  async serving(): Promise<void> {
    if (!this.set) throw new PrismError('E_UNAVAILABLE', `the remote runner at ${this.endpoint} is closed`);
    await new Promise((r) => setTimeout(r, 1000));
  }

  close(): void {
    this.set?.all.forEach((c) => c.close());
    this.set?.unary.close();
    this.set = undefined;
  }
}
