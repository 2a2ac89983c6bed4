"""Prism from Python: set and get a key, then publish and consume a message, through the proxy.

Uses only grpcio and stubs generated from proto/, which proves the wire contract does not depend
on the TypeScript client. Exits non-zero on any mismatch.

    client.py <proxy host:port> <keyvalue namespace> <messaging namespace>
    client.py --contract <proxy host:port> <messaging namespace>
    client.py --mailbox <proxy host:port> <mailbox namespace>
    client.py --large <proxy host:port> <messaging namespace> <MiB>

The second form checks the messaging contract written in proto/prism/data/v1/messaging.proto
(statuses, batch order, redelivery with `attempt`, dead letter) against a namespace whose
producer `events` publishes to topic `greetings` with `max_message_size: 64KiB` and whose
consumer `worker` reads it at least once (group `python`, `max_retries: 2`, a dead-letter slot).

The fourth form publishes and consumes a payload of <MiB> mebibytes through a namespace whose
producer and consumer use a claim check (docs/messaging.md, Claim check). grpcio receives at most
4 MiB per message unless the channel says otherwise, so a large payload needs
`grpc.max_receive_message_length` (and, for symmetry, `grpc.max_send_message_length`) raised on
the channel; the proxy's `--max-message-size` must allow it too. It first shows what a default
channel gets (RESOURCE_EXHAUSTED), then takes the redelivery on a raised channel. Then it sends
the same bytes once more as Producer/PublishUpload, a client stream of 256 KiB frames after a head
that announces their size and SHA-256 (no message holds the whole payload on the way in), and
consumes that message byte-exact too.
"""
import hashlib
import os
import sys
import time
import uuid

import grpc

from prism.data.v1 import (
    keyvalue_pb2,
    keyvalue_pb2_grpc,
    mailbox_pb2,
    mailbox_pb2_grpc,
    messaging_pb2,
    messaging_pb2_grpc,
)


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


# How long a status may take to arrive; the calls carry a 30 s deadline, so a stream that stays
# open until its deadline fails this by far.
PROMPT_S = 5.0
DEADLINE_S = 30


class ContractError(Exception):
    pass


def first_status(call) -> "tuple[grpc.StatusCode, str, float]":
    """Runs `call` (a unary call, or the first read of a stream); returns the status it ends with."""
    started = time.monotonic()
    try:
        call()
    except grpc.RpcError as err:
        return err.code(), err.details(), time.monotonic() - started
    raise ContractError("the call succeeded; an error status was expected")


def expect_status(name: str, call, code: grpc.StatusCode) -> None:
    got, details, elapsed = first_status(call)
    if got != code:
        raise ContractError(f"{name}: expected {code.name}, got {got.name}: {details}")
    if elapsed > PROMPT_S:
        raise ContractError(f"{name}: {code.name} came after {elapsed:.1f} s, not promptly")
    print(f"status {name}: {got.name}: {details}")


def next_delivery(stream, what: str):
    try:
        return next(stream)
    except StopIteration:
        raise ContractError(f"the subscription ended before {what}")


def contract(endpoint: str, namespace: str) -> int:
    channel = grpc.insecure_channel(endpoint)
    grpc.channel_ready_future(channel).result(timeout=10)
    consumer = messaging_pb2_grpc.ConsumerStub(channel)
    producer = messaging_pb2_grpc.ProducerStub(channel)
    meta = [("x-prism-namespace", namespace)]

    def subscribe(metadata, **request):
        return lambda: next(
            consumer.Subscribe(messaging_pb2.SubscribeRequest(**request), metadata=metadata, timeout=DEADLINE_S)
        )

    def acknowledge(delivery, success: bool, reason: str = "") -> None:
        consumer.Acknowledge(
            messaging_pb2.AcknowledgeRequest(
                subscription_id=delivery.subscription_id,
                delivery_id=delivery.delivery_id,
                success=success,
                reason=reason,
            ),
            metadata=meta,
            timeout=10,
        )

    # Statuses: each ends the call (for Subscribe, the stream) before any message.
    expect_status(
        "subscribe unknown namespace",
        subscribe([("x-prism-namespace", "no-such-namespace")]),
        grpc.StatusCode.NOT_FOUND,
    )
    expect_status("subscribe without namespace", subscribe([]), grpc.StatusCode.INVALID_ARGUMENT)
    expect_status("subscribe bad topic", subscribe(meta, topic="greetings.*"), grpc.StatusCode.INVALID_ARGUMENT)
    expect_status(
        "publish bad topic",
        lambda: producer.Publish(messaging_pb2.PublishRequest(topic="bad topic", payload=b"x"), metadata=meta, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    expect_status(
        "publish above max_message_size",
        lambda: producer.Publish(
            messaging_pb2.PublishRequest(topic="greetings.sizes", payload=bytes(64 * 1024 + 1)), metadata=meta, timeout=10
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )

    expect_status(
        "publish above the proxy's request limit",
        lambda: producer.Publish(
            messaging_pb2.PublishRequest(topic="greetings.sizes", payload=bytes(4 * 1024 * 1024)), metadata=meta, timeout=10
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )

    # Order: PublishBatch keeps batch order on the topic.
    payloads = [f"batch {i} {uuid.uuid4()}".encode() for i in range(3)]
    batch = producer.PublishBatch(
        messaging_pb2.PublishBatchRequest(messages=[messaging_pb2.PublishRequest(payload=p) for p in payloads]),
        metadata=meta,
        timeout=10,
    )
    ids = [r.message_id for r in batch.results]
    first = consumer.Subscribe(messaging_pb2.SubscribeRequest(), metadata=meta, timeout=DEADLINE_S)
    got = [next_delivery(first, f"message {i} of the batch") for i in range(3)]
    if [d.message.message_id for d in got] != ids or [d.message.payload for d in got] != payloads:
        raise ContractError(f"batch order: published {ids}, delivered {[d.message.message_id for d in got]}")
    if [d.message.attempt for d in got] != [1, 1, 1]:
        raise ContractError(f"first deliveries carry attempts {[d.message.attempt for d in got]}, not 1")
    print("order: PublishBatch delivered in batch order, attempt 1")

    # At-least-once: a delivery left unsettled when its stream is cancelled comes back, attempt 2.
    acknowledge(got[1], True)
    acknowledge(got[2], True)
    first.cancel()
    second = consumer.Subscribe(messaging_pb2.SubscribeRequest(), metadata=meta, timeout=DEADLINE_S)
    again = next_delivery(second, "the redelivery")
    if again.message.message_id != ids[0] or again.message.attempt != 2 or again.message.payload != payloads[0]:
        raise ContractError(f"redelivery: expected {ids[0]} with attempt 2, got {again.message}")
    print("redelivery: after a cancelled stream, attempt 2")

    # Dead letter: a nack on the max_retries-th (2nd) delivery moves a copy to <topic>.dead-letter.
    acknowledge(again, False, "python says no")
    second.cancel()
    letters = consumer.Subscribe(
        messaging_pb2.SubscribeRequest(topic="greetings.dead-letter", group="python-dead-letters"),
        metadata=meta,
        timeout=DEADLINE_S,
    )
    letter = next_delivery(letters, "the dead-lettered copy")
    headers = dict(letter.message.headers)
    expected = {
        "prism-dead-letter-reason": "python says no",
        "prism-original-topic": "greetings",
        "prism-attempts": "2",
    }
    if (
        letter.message.message_id != ids[0]
        or letter.message.payload != payloads[0]
        or letter.message.topic != "greetings.dead-letter"
        or {k: headers.get(k) for k in expected} != expected
    ):
        raise ContractError(f"dead letter: unexpected copy {letter.message}")
    acknowledge(letter, True)
    letters.cancel()
    print("dead letter: greetings.dead-letter carries the payload, id, reason, original topic and attempts")
    return 0


def mailbox(endpoint: str, namespace: str) -> int:
    """Publishes three messages and finds them again in the namespace's mailbox `inbox` (which
    consumes topic `greetings` and indexes header `order-id`): by header, newest first, in pages."""
    channel = grpc.insecure_channel(endpoint)
    grpc.channel_ready_future(channel).result(timeout=10)
    meta = [("x-prism-namespace", namespace)]
    producer = messaging_pb2_grpc.ProducerStub(channel)
    box = mailbox_pb2_grpc.MailboxStub(channel)
    order = f"py-{uuid.uuid4()}"
    ids = []
    for i in range(3):
        published = producer.Publish(
            messaging_pb2.PublishRequest(payload=f"mail {i}".encode(), headers={"order-id": order}),
            metadata=meta,
            timeout=10,
        )
        ids.append(published.message_id)
    query = mailbox_pb2.MailboxQueryRequest(
        filter=mailbox_pb2.MailboxFilter(headers={"order-id": order}), limit=2
    )
    deadline = time.monotonic() + 20
    while True:
        first = box.Query(query, metadata=meta, timeout=10)
        if len(first.messages) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    query.page_token = first.next_page_token
    second = box.Query(query, metadata=meta, timeout=10)
    found = [m.envelope.message_id for m in list(first.messages) + list(second.messages)]
    if found != list(reversed(ids)) or second.next_page_token:
        print(f"mailbox query found {found}, expected {list(reversed(ids))}", file=sys.stderr)
        return 1
    got = box.Get(mailbox_pb2.MailboxGetRequest(message_id=ids[1]), metadata=meta, timeout=10)
    if got.message.envelope.payload != b"mail 1":
        print(f"mailbox get returned {got.message.envelope.payload!r}", file=sys.stderr)
        return 1
    try:
        box.Query(
            mailbox_pb2.MailboxQueryRequest(filter=mailbox_pb2.MailboxFilter(headers={"region": "eu"})),
            metadata=meta,
            timeout=10,
        )
        print("a filter on a header that is not indexed was accepted", file=sys.stderr)
        return 1
    except grpc.RpcError as err:
        print(f"mailbox unindexed header: {err.code().name}: {err.details()}")
    print(f"mailbox ok: {len(found)} messages in 2 pages, newest first")
    return 0


UPLOAD_FRAME_BYTES = 256 * 1024


def large(endpoint: str, namespace: str, mebibytes: int) -> int:
    """Publishes `mebibytes` MiB and consumes them byte-exact with their content type."""
    payload = os.urandom(mebibytes * 1024 * 1024)
    digest = hashlib.sha256(payload).hexdigest()
    content_type = "application/x-python-large"
    meta = [("x-prism-namespace", namespace)]
    # The payload plus room for the envelope around it.
    limit = len(payload) + 1024 * 1024
    channel = grpc.insecure_channel(
        endpoint,
        options=[("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)],
    )
    grpc.channel_ready_future(channel).result(timeout=10)
    producer = messaging_pb2_grpc.ProducerStub(channel)
    consumer = messaging_pb2_grpc.ConsumerStub(channel)
    published = producer.Publish(
        messaging_pb2.PublishRequest(payload=payload, content_type=content_type), metadata=meta, timeout=120
    )

    # A channel with grpcio's defaults refuses the delivery; the message stays unacknowledged.
    default = grpc.insecure_channel(endpoint)
    try:
        next(messaging_pb2_grpc.ConsumerStub(default).Subscribe(messaging_pb2.SubscribeRequest(), metadata=meta, timeout=60))
        raise ContractError(f"a default channel received a {len(payload)}-byte delivery")
    except grpc.RpcError as err:
        print(f"default channel: {err.code().name}: {err.details()}")
    finally:
        default.close()

    def take(what: str, message_id: str):
        """Subscribes, checks the delivery against the payload, acknowledges it; returns the message."""
        stream = consumer.Subscribe(messaging_pb2.SubscribeRequest(), metadata=meta, timeout=120)
        delivery = next_delivery(stream, f"the {what} message")
        message = delivery.message
        if (
            message.message_id != message_id
            or len(message.payload) != len(payload)
            or hashlib.sha256(message.payload).hexdigest() != digest
            or message.content_type != content_type
        ):
            raise ContractError(
                f"{what} payload: got {message.message_id} with {len(message.payload)} bytes of {message.content_type!r}"
            )
        consumer.Acknowledge(
            messaging_pb2.AcknowledgeRequest(
                subscription_id=delivery.subscription_id, delivery_id=delivery.delivery_id, success=True
            ),
            metadata=meta,
            timeout=30,
        )
        stream.cancel()
        return message

    message = take("large", published.message_id)
    print(f"large ok: {len(payload)} bytes byte-exact, {content_type}, attempt {message.attempt}")

    def frames():
        head = messaging_pb2.PublishUploadHead(size=len(payload), sha256=digest, content_type=content_type)
        yield messaging_pb2.PublishUploadRequest(head=head)
        for at in range(0, len(payload), UPLOAD_FRAME_BYTES):
            yield messaging_pb2.PublishUploadRequest(data=payload[at : at + UPLOAD_FRAME_BYTES])

    uploaded = producer.PublishUpload(frames(), metadata=meta, timeout=120)
    message = take("uploaded", uploaded.message_id)
    print(f"upload ok: {len(message.payload)} bytes byte-exact in {-(-len(payload) // UPLOAD_FRAME_BYTES)} frames")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--large":
        try:
            sys.exit(large(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        except ContractError as err:
            print(f"large payload broken: {err}", file=sys.stderr)
            sys.exit(1)
    if len(sys.argv) == 4 and sys.argv[1] == "--mailbox":
        sys.exit(mailbox(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 4 and sys.argv[1] == "--contract":
        try:
            sys.exit(contract(sys.argv[2], sys.argv[3]))
        except ContractError as err:
            print(f"contract broken: {err}", file=sys.stderr)
            sys.exit(1)
    if len(sys.argv) != 4:
        print(
            "usage: client.py <proxy host:port> <keyvalue namespace> <messaging namespace>\n"
            "       client.py --contract <proxy host:port> <messaging namespace>\n"
            "       client.py --mailbox <proxy host:port> <mailbox namespace>\n"
            "       client.py --large <proxy host:port> <messaging namespace> <MiB>",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
