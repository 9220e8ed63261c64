"""The one partitioner: Kafka's murmur2, as the Java client and kafka-python compute it."""

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner import murmur2 as kafka_python_murmur2

from pipeline.partitioner import murmur2, partition_of, partition_of_bytes


@given(st.binary(max_size=96))
@settings(max_examples=2_000)
def test_murmur2_is_kafka_pythons_for_any_bytes(data):
    assert murmur2(data) == kafka_python_murmur2(data)


def test_partitions_of_the_java_client():
    # kafka-python's own check against org.apache.kafka.clients.producer's partitioner, 1,000 partitions
    cases = {b"": 681, b"a": 524, b"ab": 434, b"abc": 107, b"123456789": 566, b"\x00 ": 742}
    assert {key: partition_of_bytes(key, 1000) for key in cases} == cases


def test_a_text_key_is_hashed_as_its_utf8_bytes():
    assert partition_of("ครัวเรือน-0001", 12) == partition_of_bytes("ครัวเรือน-0001".encode(), 12)
