"""append_all without a broker: a producer without kafka-python's internals (another client, or a
kafka-python that changed them) gets send() per record, in order, and the same answer: the last
future of each record. (On a real broker: test_bulk_send_kafka.py.)"""

from __future__ import annotations

from pipeline.bulk_send import append_all, fast_path


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
    assert append_all(producer, records) == ["future-1", "future-2", "future-3", "future-4"]
    assert producer.sent == records
