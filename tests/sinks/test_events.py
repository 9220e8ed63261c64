import dataclasses
import json
from datetime import UTC, datetime
from functools import partial

import pytest

from schemas.codec import Codec
from schemas.topics import ALERT, HOUSEHOLD_STATE, SOURCE_FAMILIES
from sinks.events import COLUMNS, events_mapping, payload_json
from sinks.loader import load_events
from tests.support.sinks import examples, state_record


def test_mapping_covers_every_written_column(db):
    columns = db.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND default_kind != 'MATERIALIZED' AND table = 'events'"
    ).result_rows
    mapping = events_mapping(SOURCE_FAMILIES[0])
    assert sorted(mapping.insert_columns) == sorted(name for (name,) in columns if name != "loaded_at")
    assert mapping.columns == COLUMNS


def test_payload_keeps_thai_text_and_encodes_timestamps_and_bytes():
    record = {"name": "บ้าน", "at": datetime(2024, 5, 1, 7, 30, tzinfo=UTC), "raw": b"\x00\xff"}
    assert json.loads(payload_json(record)) == {"name": "บ้าน", "at": "2024-05-01T07:30:00+00:00", "raw": "AP8="}
    with pytest.raises(TypeError):
        payload_json({"x": object()})


@pytest.mark.parametrize("family", SOURCE_FAMILIES, ids=lambda f: f.name)
def test_every_source_family_loads_with_its_whole_record(db, family):
    codec = Codec()
    batch = examples(codec, family)
    assert batch, f"no examples for {family.name}"
    bad = []
    decode = partial(codec.decode, fam=family.name)
    load_events(db, events_mapping(family), decode, batch, lambda e, err: bad.append(err))
    assert bad == []
    stored = list(db.query("SELECT * FROM events ORDER BY _offset").named_results())
    assert [row["_offset"] for row in stored] == list(range(len(batch)))
    for row, event in zip(stored, batch, strict=True):
        record = codec.decode(event.value, family.name)
        assert row["family"] == family.name
        assert (str(row["event_id"]), row["province"], row["household_key"]) == (
            record["event_id"], record["province"], record["household_key"]
        )
        assert json.loads(row["payload"]) == json.loads(payload_json(record))


def test_a_redelivered_event_is_one_row_after_merging(db):
    codec = Codec()
    family = SOURCE_FAMILIES[0]
    first = examples(codec, family)
    again = [dataclasses.replace(e, partition=1, offset=100 + i) for i, e in enumerate(first)]
    decode = partial(codec.decode, fam=family.name)
    for batch in (first, again):
        load_events(db, events_mapping(family), decode, batch, lambda e, err: None)
    assert db.command("SELECT count() FROM events") == 2 * len(first)
    assert db.command("SELECT count() FROM events FINAL") == len(first)


def test_worker_loads_the_state_and_alert_topics_and_every_source_topic_each_with_its_own_client(tmp_path, monkeypatch):
    from povhub.settings import load_settings
    from povhub.worker import loader_runners
    from streams.dead_letters import DeadLetterProducer

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("POVHUB_DATA_DIR", str(tmp_path))
    s = load_settings()
    dlq = DeadLetterProducer(s.kafka.bootstrap_servers, Codec(), "dlq")  # connects at the first dead letter
    opened = []
    runners = loader_runners(s, lambda: opened.append(object()) or opened[-1], Codec(), dlq)
    expected = [f"povhub-clickhouse-load-{s.kafka.topics.name(f)}" for f in (*SOURCE_FAMILIES, HOUSEHOLD_STATE, ALERT)]
    assert sorted(runner.cfg.group for runner in runners) == sorted(expected)
    # each with a client of its own: their inserts run in parallel (tests/sinks/test_parallel_clients.py)
    assert [runner.client for runner in runners] == opened and len(opened) == len(expected)


def test_only_the_live_figures_loader_flushes_when_idle(db, tmp_path, monkeypatch):
    # household_state feeds the live figures (its freshness, issue 18); the events and alerts
    # loaders batch for seconds: an insert per fetch burst costs chdb as much as a full one
    from povhub.settings import load_settings
    from povhub.worker import loader_runners
    from sinks.loader import LOADER_IDLE_AFTER_S, LOADER_IDLE_S, LOADER_UNHURRIED_S
    from streams.dead_letters import DeadLetterProducer

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("POVHUB_DATA_DIR", str(tmp_path))
    s = load_settings()
    dlq = DeadLetterProducer(s.kafka.bootstrap_servers, Codec(), "dlq")
    idle: dict[str, set] = {}
    for runner in loader_runners(s, lambda: db, Codec(), dlq):
        idle.setdefault(runner.mapping.table, set()).add((runner.cfg.idle_s, runner.cfg.idle_after_s,
                                                          runner.cfg.batch_seconds))
    live = (LOADER_IDLE_S, LOADER_IDLE_AFTER_S, s.loader.batch_seconds)
    waits = (None, 0.0, LOADER_UNHURRIED_S)
    assert idle == {"household_state": {live}, "alerts": {waits}, "events": {waits}}


def test_only_the_state_loader_hands_clickhouse_the_avro_framed_as_the_codec_frames_it(tmp_path, monkeypatch):
    # household_state's batches go to migrations/0020's Null table as the Avro they came in
    # (sinks/avro_batch.py); the events keep their JSON payload, built from the decoded record
    from povhub.settings import load_settings
    from povhub.worker import loader_runners
    from streams.dead_letters import DeadLetterProducer

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("POVHUB_DATA_DIR", str(tmp_path))
    s = load_settings()
    codec = Codec()
    runners = loader_runners(s, lambda: None, codec, DeadLetterProducer(s.kafka.bootstrap_servers, codec, "dlq"))
    avro = {runner.mapping.table: runner.avro for runner in runners if runner.avro is not None}
    assert list(avro) == ["household_state"]
    state = codec.encode(HOUSEHOLD_STATE.name, state_record(1))
    assert avro["household_state"].table == "household_state_avro" and avro["household_state"].takes([state])


def test_with_a_schema_registry_the_state_loader_decodes_its_batches_itself():
    # the newest schema's id would be the registry's, learnt by registering: a loader needs no such rights
    from povhub.worker import avro_input
    from schemas.registry import SchemaRegistry
    from sinks.household_state import HOUSEHOLD_STATE as STATE_MAPPING

    assert avro_input(STATE_MAPPING, HOUSEHOLD_STATE.name, Codec(registry=SchemaRegistry("http://127.0.0.1:1"))) is None
    assert avro_input(STATE_MAPPING, HOUSEHOLD_STATE.name, Codec()) is not None
