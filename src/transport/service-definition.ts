import {
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageShape,
} from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { fastEncoders } from './fast-encoders.js';
import { encodeLargeSubscribeResponse } from './large-payload-encoder.js';

/**
 * A grpc-js service definition built from a protobuf-es service descriptor: path
 * `/<typeName>/<Method>`, stream flags from the method kind, protobuf-es binary serializers (the
 * hottest responses through the same-bytes encoders of fast-encoders.ts, Subscribe's with a large
 * payload through large-payload-encoder.ts).
 * Servers and clients of every Prism service use it, so both ends agree on the wire by construction.
 */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) definition[method.localName] = methodDefinition(service, method);
  return definition as ServiceDefinition;
}

function methodDefinition(service: DescService, method: DescMethod): MethodDefinition<unknown, unknown> {
  return {
    path: `/${service.typeName}/${method.name}`,
    requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
    responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    requestSerialize: serializer(method.input),
    requestDeserialize: deserializer(method.input),
    responseSerialize: serializer(method.output),
    responseDeserialize: deserializer(method.output),
    originalName: method.localName,
  };
}

function serializer(desc: DescMessage): (value: unknown) => Buffer {
  const fast =
    fastEncoders.get(desc.typeName) ??
    (desc.typeName === 'prism.data.v1.SubscribeResponse' ? encodeLargeSubscribeResponse : undefined);
  if (fast) return (value) => fast(value) ?? toBinaryBuffer(desc, value);
  return (value) => toBinaryBuffer(desc, value);
}

function toBinaryBuffer(desc: DescMessage, value: unknown): Buffer {
  const bytes = toBinary(desc, value as MessageShape<DescMessage>);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function deserializer(desc: DescMessage): (bytes: Buffer) => unknown {
  return (bytes) => fromBinary(desc, bytes);
}
