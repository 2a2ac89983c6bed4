"""Prism from Python: set and get a key, then publish and consume a message, through the proxy.

Uses only grpcio and stubs generated from proto/, which proves the wire contract does not depend
on the TypeScript client. Exits non-zero on any mismatch.
"""
import os
import sys
import uuid

import grpc

from prism.data.v1 import keyvalue_pb2, keyvalue_pb2_grpc, messaging_pb2, messaging_pb2_grpc


def main(endpoint: str, kv_namespace: str, messaging_namespace: str) -> int:
    channel = grpc.insecure_channel(endpoint)
    grpc.channel_ready_future(channel).result(timeout=10)

    kv = keyvalue_pb2_grpc.KeyValueStub(channel)
    meta = [("x-prism-namespace", kv_namespace)]
    key = f"python/{uuid.uuid4()}"
    value = os.urandom(256)
    kv.Set(keyvalue_pb2.SetRequest(key=key, value=value, ttl_seconds=60), metadata=meta, timeout=10)
    got = kv.Get(keyvalue_pb2.GetRequest(key=key), metadata=meta, timeout=10)
    if not got.found or got.value != value:
        print(f"key-value round trip failed for {key}", file=sys.stderr)
        return 1
    missing = kv.Get(keyvalue_pb2.GetRequest(key=key + "-missing"), metadata=meta, timeout=10)
    if missing.found:
        print("a missing key was reported as found", file=sys.stderr)
        return 1
    print(f"kv ok: {key} ({len(value)} bytes)")

    meta = [("x-prism-namespace", messaging_namespace)]
    consumer = messaging_pb2_grpc.ConsumerStub(channel)
    producer = messaging_pb2_grpc.ProducerStub(channel)
    stream = consumer.Subscribe(messaging_pb2.SubscribeRequest(), metadata=meta, timeout=30)
    payload = f"hello from python {uuid.uuid4()}".encode()
    published = producer.Publish(
        messaging_pb2.PublishRequest(payload=payload, content_type="text/plain", headers={"lang": "python"}),
        metadata=meta,
        timeout=10,
    )
    for delivery in stream:
        envelope = delivery.message
        if envelope.message_id != published.message_id:
            # Leftovers from an earlier run: acknowledge and keep reading.
            consumer.Acknowledge(
                messaging_pb2.AcknowledgeRequest(subscription_id=delivery.subscription_id, delivery_id=delivery.delivery_id, success=True),
                metadata=meta,
                timeout=10,
            )
            continue
        if envelope.payload != payload or envelope.headers.get("lang") != "python" or envelope.content_type != "text/plain":
            print(f"envelope mismatch: {envelope}", file=sys.stderr)
            return 1
        consumer.Acknowledge(
            messaging_pb2.AcknowledgeRequest(subscription_id=delivery.subscription_id, delivery_id=delivery.delivery_id, success=True),
            metadata=meta,
            timeout=10,
        )
        stream.cancel()
        print(f"publish/consume ok: {envelope.message_id}")
        return 0
    print("the subscription ended before the message arrived", file=sys.stderr)
    return 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("usage: client.py <proxy host:port> <keyvalue namespace> <messaging namespace>", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
