import type { PrismError } from '../errors.js';
import type * as kv from '../gen/prism/data/v1/keyvalue_pb.js';
import type { CallError } from '../transport/status-codes.js';
import { NAMESPACE_HEADER, PATTERN_HEADER } from '../transport/metadata.js';
import type { DataClientOptions } from './data-client.js';
import { GrpcHttp2Channel } from './grpc-http2.js';

export { GrpcHttp2Channel };
import * as codec from './kv-codec.js';
import { proxyCallError } from './proxy-error.js';

/**
 * The key-value calls of the data plane, as the kv commands use them. DataClient (grpc-js,
 * protobuf-es) and KeyValueClient (node:http2, a static codec) both implement it with the same
 * results and the same errors; test/integration/kv-http2-client.test.ts holds them to that against
 * a real proxy.
 */
export interface KeyValueCalls {
  set(key: string, value: Uint8Array, ttlSeconds?: number): Promise<kv.SetResponse>;
  get(key: string): Promise<kv.GetResponse>;
  delete(key: string): Promise<kv.DeleteResponse>;
  exists(key: string): Promise<kv.ExistsResponse>;
  scan(prefix: string, limit?: number, cursor?: string): Promise<kv.ScanResponse>;
  ttl(key: string): Promise<kv.GetTtlResponse>;
  close(): void;
}

/**
 * KeyValue through the proxy over one `node:http2` session (src/client/grpc-http2.ts), with the
 * codec of src/client/kv-codec.ts: what the CLI's kv commands use, since it loads in a fraction
 * of the time grpc-js and protobuf-es's descriptors take. Errors are DataClient's PrismErrors.
 */
export class KeyValueClient implements KeyValueCalls {
  /** `channel`: one already made for `endpoint` with `options.tls` (the CLI makes it first). */
  constructor(
    readonly endpoint: string,
    private readonly options: DataClientOptions,
    private readonly channel = new GrpcHttp2Channel(endpoint, options.tls),
  ) {}

  set(key: string, value: Uint8Array, ttlSeconds = 0): Promise<kv.SetResponse> {
    return this.call(
      codec.KV_PATH.set,
      codec.encodeSetRequest(key, value, BigInt(ttlSeconds)),
      codec.decodeSetResponse,
    );
  }
  get(key: string): Promise<kv.GetResponse> {
    return this.call(codec.KV_PATH.get, codec.encodeKeyRequest(key), codec.decodeGetResponse);
  }
  delete(key: string): Promise<kv.DeleteResponse> {
    return this.call(codec.KV_PATH.delete, codec.encodeKeyRequest(key), codec.decodeDeleteResponse);
  }
  exists(key: string): Promise<kv.ExistsResponse> {
    return this.call(codec.KV_PATH.exists, codec.encodeKeyRequest(key), codec.decodeExistsResponse);
  }
  scan(prefix: string, limit = 0, cursor = ''): Promise<kv.ScanResponse> {
    return this.call(
      codec.KV_PATH.scan,
      codec.encodeScanRequest(prefix, limit, cursor),
      codec.decodeScanResponse,
    );
  }
  ttl(key: string): Promise<kv.GetTtlResponse> {
    return this.call(codec.KV_PATH.getTtl, codec.encodeKeyRequest(key), codec.decodeGetTtlResponse);
  }

  close(): void {
    this.channel.close();
  }

  private async call<Res>(
    path: string,
    request: Uint8Array,
    decode: (bytes: Uint8Array) => Res,
  ): Promise<Res> {
    const metadata: Record<string, string> = { [NAMESPACE_HEADER]: this.options.namespace };
    if (this.options.pattern) metadata[PATTERN_HEADER] = this.options.pattern;
    if (this.options.token) metadata.authorization = `Bearer ${this.options.token}`;
    let response: Uint8Array;
    try {
      response = await this.channel.unary(path, request, metadata, this.options.timeoutMs ?? 15_000);
    } catch (err) {
      throw this.toError(err as CallError);
    }
    return decode(response);
  }

  private toError(err: CallError): PrismError {
    return proxyCallError(err, this.endpoint, {
      tls: this.channel.tls,
      clientCertificate: this.options.tls?.certFile !== undefined,
    });
  }
}
