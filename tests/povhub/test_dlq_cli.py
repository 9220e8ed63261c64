"""``povhub dlq list`` and ``povhub dlq replay`` against a broker, through the command line entry."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaProducer

from povhub.cli import main
from povhub.dlq_replay import why_not
from schemas.codec import Codec
from schemas.dead_letter import dead_letter
from schemas.examples import example_paths, load_example
from schemas.topics import DEAD_LETTER, HOUSEHOLD_STATE, LOCALGOV_UPDATE, Topics
from tests.support.kafka_read import read_topic

CLEAR_ID = "1101700123456"


@pytest.fixture
def hub(hub_env, monkeypatch):
    for k, v in hub_env.items():
        monkeypatch.setenv(k, v)
    return hub_env, Topics(hub_env["POVHUB_TOPIC_PREFIX"])


def publish_dead_letters(bootstrap: str, topics: Topics) -> bytes:
    """Four dead letters as the stages write them; returns the original value that can be replayed."""
    codec = Codec(topics=topics)
    update = codec.encode(LOCALGOV_UPDATE.name, load_example(example_paths(LOCALGOV_UPDATE.name)[0]))
    source, state = topics.name(LOCALGOV_UPDATE), topics.name(HOUSEHOLD_STATE)
    records = [
        dead_letter(source="povhub", stage="reconcile", reason="unmatched-person",
                    detail=f"person {CLEAR_ID} has no household after 7 days", source_record_id=f"{source}:1:7",
                    original_key=b"50010100012", original_value=update, origin_topic=source, origin_partition=1,
                    origin_offset=7),
        dead_letter(source="povhub", stage="reconcile", reason="undecodable", detail="DecodeError('magic')",
                    source_record_id=f"{source}:2:3", original_key=b"50010100013", original_value=b"\x01junk",
                    origin_topic=source, origin_partition=2, origin_offset=3),
        dead_letter(source="povhub", stage="loader", reason="unloadable", detail="ClickHouse said no",
                    source_record_id=f"{state}:0:9", original_key=b"50010100014", original_value=b"\x00state",
                    origin_topic=state, origin_partition=0, origin_offset=9),
        dead_letter(source="tpmap", stage="connector:tpmap", reason="bad-citizen-id",
                    detail="citizen ID 1-1017-00123-45-6 fails its check digit", source_record_id="x.csv:12",
                    original={"citizen_id": "************6"}, origin_file="x.csv", origin_line=12),
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
    try:
        for r in records:
            producer.send(topics.name(DEAD_LETTER), key=r["household_key"], value=codec.encode(DEAD_LETTER.name, r))
            # one record per batch: the embedded broker's end offsets are only exact then
            producer.flush()
    finally:
        producer.close()
    return update


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    rc = main(["dlq", *argv])
    out = capsys.readouterr()
    return rc, out.out.splitlines(), out.err


def test_list_and_replay(hub, capsys):
    env, topics = hub
    update = publish_dead_letters(env["KAFKA_BOOTSTRAP_SERVERS"], topics)

    rc, lines, _ = run(capsys, "list")
    assert rc == 0
    assert lines[4] == "4 dead letters"
    assert ["1", "connector:tpmap", "bad-citizen-id"] in [line.split() for line in lines[5:]]
    shown = "\n".join(lines)
    assert CLEAR_ID not in shown and "1-1017-00123-45-6" not in shown
    assert "person ************6 has no household" in shown
    assert f"{topics.name(LOCALGOV_UPDATE)}[1]@7" in shown and "x.csv:12" in shown

    rc, lines, _ = run(capsys, "list", "--stage", "reconcile", "--reason", "undecodable")
    assert rc == 0 and len([line for line in lines if "  reconcile  undecodable  " in line]) == 1
    assert lines[1] == "1 dead letters"
    rc, lines, _ = run(capsys, "list", "--topic", topics.name(HOUSEHOLD_STATE), "--since", "1h")
    assert rc == 0 and "  loader  unloadable  " in lines[0] and lines[1] == "1 dead letters"
    rc, lines, _ = run(capsys, "list", "--since", "2999-01-01T00:00:00")
    assert rc == 0 and lines == ["0 dead letters"]
    rc, lines, _ = run(capsys, "list", "--limit", "2")
    assert rc == 0 and lines[2] == "2 dead letters"

    rc, lines, err = run(capsys, "list", "--json", "--reason", "unmatched-person")
    [item] = [json.loads(line) for line in lines]
    assert item["stage"] == "reconcile" and item["origin_offset"] == 7 and item["original_value_bytes"] == len(update)
    assert item["detail"].startswith("person ************6 ") and CLEAR_ID not in lines[0]
    assert "1 dead letters" in err

    source = topics.name(LOCALGOV_UPDATE)
    rc, lines, err = run(capsys, "replay", "--topic", source)
    assert rc == 2 and "--stage or --reason" in err and not lines

    rc, lines, _ = run(capsys, "replay", "--reason", "unmatched-person", "--dry-run")
    assert rc == 0 and lines[0].startswith("would replay  ") and "dry run: nothing sent" in lines[1]

    rc, lines, _ = run(capsys, "replay", "--all")
    assert rc == 0
    assert lines[-4] == "replayed 1, skipped 3"
    skipped = "\n".join(lines[-3:])
    assert "skipped: no original message" in skipped
    assert f"origin {topics.name(HOUSEHOLD_STATE)} is not a source topic" in skipped
    assert "skipped: still undecodable" in skipped
    assert any(line.startswith("skip (still undecodable: it would only be dead-lettered again: ") for line in lines)

    [message] = read_topic(env["KAFKA_BOOTSTRAP_SERVERS"], source, expect_at_least=1)
    assert message.key == b"50010100012" and message.value == update


def test_a_request_body_without_a_topic_is_not_replayed():
    topics = Topics()
    record = dead_letter(source="localgov:6500101", stage="connector:localgov", reason="bad-json", detail="not JSON",
                         source_record_id="r1", original_value=b"{oops", request_id="r1")
    skip = why_not(record, {topics.name(LOCALGOV_UPDATE): LOCALGOV_UPDATE}, Codec(topics=topics))
    assert skip is not None and skip.kind == "not from a topic"
