"""The raw limits the pipeline's stages are set beside, measured in the benchmark's own run:
kafka-python + fastavro producing and consuming source events with nothing else done (as
bench/reconcile.py's raw mode does, without the stage's state), and ClickHouse inserting state
rows in loader batches with and without the live figures' view (0011)."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

from clickhouse_connect.driver.client import Client
from kafka import KafkaConsumer

from bench.level_queries import households, state_columns
from connectors.tpmap.resumable import SLICE
from pipeline.bulk_send import append_all
from pipeline import clients
from pipeline.clients import CONNECTOR
from povhub.kafka_admin import ensure_topics
from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from schemas.topics import TPMAP_HOUSEHOLD, Topics
from sinks.areas import load_areas
from sinks.batch_insert import KafkaSpan, insert_batch
from sinks.clickhouse import connect
from sinks.figures import FIGURES_VIEWS
from sinks.household_state import HOUSEHOLD_STATE
from sinks.migrate import migrate

LOADER_BATCH = 20_000  # POVHUB_LOADER_BATCH_SIZE's default
Rate = tuple[float, float]  # (events/s, CPU seconds of this process)


def kafka_raw(bootstrap: str, events: int, partitions: int) -> tuple[Rate, Rate, tuple[float, float]]:
    """(produce, consume, Avro): Avro-encode and produce ``events`` TPMAP household events with the
    connector's producer, handed over in slices as it does, then consume and decode them all; no
    state, no transaction.
    Avro: the CPU seconds of encoding and of decoding one such event alone, so that what the Kafka
    client costs a record can be told apart (bench/pipeline.py's Kafka line)."""
    topics = Topics(f"raw{uuid.uuid4().hex[:8]}.")
    ensure_topics(bootstrap, topics, partitions)
    topic, codec = topics.name(TPMAP_HOUSEHOLD), Codec(topics=topics)
    example = next(load_example(p) for p in example_paths(TPMAP_HOUSEHOLD.name) if p.stem == "snapshot")
    producer = clients.producer(bootstrap, "raw-limit", CONNECTOR)
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, events, SLICE):  # handed over as the TPMAP connector does
        keys = [f"{i:011d}" for i in range(start, min(start + SLICE, events))]
        append_all(producer, [(topic, key.encode(), codec.encode(TPMAP_HOUSEHOLD.name, {**example, "household_key": key}),
                               None) for key in keys])
    producer.flush()
    produced = (events / (time.perf_counter() - wall), time.process_time() - cpu)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap.split(","), auto_offset_reset="earliest",
                             enable_auto_commit=False, max_poll_records=5000)
    wall, cpu, seen = time.perf_counter(), time.process_time(), 0
    while seen < events:
        for records in consumer.poll(timeout_ms=1000).values():
            for r in records:
                codec.decode(r.value, TPMAP_HOUSEHOLD.name)
            seen += len(records)
    consumed = (events / (time.perf_counter() - wall), time.process_time() - cpu)
    consumer.close()
    sample = [{**example, "household_key": f"{i:011d}"} for i in range(min(events, 20_000))]
    cpu = time.process_time()
    encoded = [codec.encode(TPMAP_HOUSEHOLD.name, e) for e in sample]
    encode_s, cpu = time.process_time() - cpu, time.process_time()
    for value in encoded:
        codec.decode(value, TPMAP_HOUSEHOLD.name)
    return produced, consumed, (encode_s / len(sample), (time.process_time() - cpu) / len(sample))


def _open(folder: Path, live: bool) -> Client:
    client = connect(f"chdb://{folder}")
    migrate(client)
    load_areas(client)
    for view in FIGURES_VIEWS:  # no refresh during the measurement
        client.command(f"ALTER TABLE {view} MODIFY REFRESH EVERY 1 YEAR APPEND")
    if not live:
        client.command("DROP VIEW area_household_figures_mv")
    return client


def clickhouse_raw(folder: Path, count: int) -> tuple[Rate, Rate, int]:
    """(raw, with live figures, rows): ``count`` national-shaped households' state rows (a third
    with a second version) inserted into a fresh chdb in loader batches with their tokens; chdb
    runs in this process, so its CPU is this process's."""
    rng = random.Random(18)
    homes = households(count, rng)
    second = [h for h in homes if rng.random() < 1 / 3]
    rates = []
    for live in (False, True):
        client = _open(folder / ("live" if live else "raw"), live)
        try:
            wall, cpu, offset, row_rng = time.perf_counter(), time.process_time(), 0, random.Random(1)
            for version, part in ((1, homes), (2, second)):
                for start in range(0, len(part), LOADER_BATCH):
                    chunk = part[start:start + LOADER_BATCH]
                    rows = list(zip(*state_columns(chunk, version, row_rng, offset)))
                    span = KafkaSpan("bench", 0, offset, offset + len(rows) - 1, uuid.uuid4().hex)
                    insert_batch(client, "household_state", HOUSEHOLD_STATE.insert_columns, rows, span.dedup_token)
                    offset += len(rows)
            rates.append((offset / (time.perf_counter() - wall), time.process_time() - cpu))
        finally:
            client.close()
    return rates[0], rates[1], offset
