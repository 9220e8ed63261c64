"""append_all without a broker: a producer without kafka-python's internals (another client, or a
kafka-python that changed them) gets send() per record, in order, and a Sent holding each
record's future. (On a real broker: test_bulk_send_kafka.py.)"""

from __future__ import annotations

from kafka.errors import MessageSizeTooLargeError
from kafka.producer.future import FutureProduceResult
from kafka.structs import TopicPartition

from pipeline.bulk_send import Sent, append_all, fast_path


class SendOnly:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None, partition: int | None = None) -> str:
        self.sent.append((topic, key, value, partition))
        return f"future-{len(self.sent)}"


def test_a_producer_without_the_internals_sends_record_by_record_in_order():
    producer = SendOnly()
    records = [("a", b"k1", b"v1", 0), ("b", b"k2", b"v2", None), ("a", b"k3", b"v3", 0), ("a", None, b"v4", 1)]
    assert not fast_path(producer)
    assert append_all(producer, records).futures == ["future-1", "future-2", "future-3", "future-4"]
    assert producer.sent == records


def test_a_split_off_batch_holding_none_of_the_futures_is_still_watched():
    # kafka-python splits a batch the broker found too large and moves each future with its record;
    # records without one are stood for by the Sent they were handed over in, which then watches
    # each new batch once: one that fails is among its errors, one that succeeds is not
    sent = Sent()
    refused, taken = FutureProduceResult(TopicPartition("t", 0)), FutureProduceResult(TopicPartition("t", 0))
    for index in (0, 1, 2):
        sent.rebind(refused, index)
    sent.rebind(taken, 0)
    taken.success((10, -1, None))
    assert sent.errors() == []
    refused.success((-1, -1, lambda index: MessageSizeTooLargeError(f"record {index}")))
    assert [str(e) for e in sent.errors()] == ["[Error 10] MessageSizeTooLargeError: record 0"]
