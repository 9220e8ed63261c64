import json
import pickle
import shutil
from pathlib import Path

import pytest

from schemas.catalog import CATALOG_FILE, CatalogError, load_catalog, schema_fingerprint
from schemas.codec import Codec, DecodeError, EncodeError
from schemas.compat import check_backward_transitive, main as compat_main
from schemas.examples import example_paths, load_example
from schemas.topics import FAMILIES

ENVELOPE = ["event_id", "source", "source_record_id", "event_time", "ingest_time", "schema_version",
            "household_key", "province", "district", "subdistrict", "village"]
SENSITIVE = {"disabled", "bedridden", "chronic_illness", "findings", "note"}

EXAMPLES = [(f.name, p) for f in FAMILIES for p in example_paths(f.name)]


def test_every_family_has_an_example():
    assert {f for f, _ in EXAMPLES} == {f.name for f in FAMILIES}


@pytest.mark.parametrize(("fam", "path"), EXAMPLES, ids=[f"{f}/{p.stem}" for f, p in EXAMPLES])
def test_example_round_trips_through_the_codec(fam, path):
    codec = Codec()
    record = load_example(path)
    data = codec.encode(fam, record)
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == codec.catalog.latest(fam).id
    decoded = codec.decode(data, fam)
    assert codec.encode(fam, decoded) == data
    for name in ("event_id", "household_key", "source_record_id"):
        assert decoded[name] == record[name]
    assert int(decoded["event_time"].timestamp() * 1000) == record["event_time"]


@pytest.mark.parametrize("fam", [f.name for f in FAMILIES])
def test_every_schema_starts_with_the_envelope(fam):
    fields = [f["name"] for f in load_catalog().latest(fam).raw["fields"]]
    assert fields[: len(ENVELOPE)] == ENVELOPE


def _fields(schema):
    if isinstance(schema, dict):
        for f in schema.get("fields", []):
            yield f
            yield from _fields(f["type"])
        for key in ("items", "values"):
            if key in schema:
                yield from _fields(schema[key])
    elif isinstance(schema, list):
        for s in schema:
            yield from _fields(s)


def test_health_and_disability_fields_are_tagged_sensitive():
    tagged = [f["name"] for v in load_catalog().versions for f in _fields(v.raw) if f["name"] in SENSITIVE]
    assert tagged, "expected sensitive fields in the schemas"
    for v in load_catalog().versions:
        for f in _fields(v.raw):
            if f["name"] in SENSITIVE:
                assert f.get("pdpa") == "sensitive", f"{v.file}: {f['name']} is not tagged pdpa=sensitive"


def test_no_schema_carries_a_clear_citizen_id_field():
    for v in load_catalog().versions:
        assert not [f["name"] for f in _fields(v.raw) if "citizen" in f["name"]], v.file


def test_decode_rejects_bad_frames():
    codec = Codec()
    good = codec.encode("alert", load_example(example_paths("alert")[0]))
    with pytest.raises(DecodeError, match="magic"):
        codec.decode(b"\x01" + good[1:], "alert")
    with pytest.raises(DecodeError, match="unknown schema id"):
        codec.decode(b"\x00\x00\x00\x03\xe7" + good[5:], "alert")
    with pytest.raises(DecodeError, match="belongs to alert"):
        codec.decode(good, "household.state")
    with pytest.raises(DecodeError, match="too short"):
        codec.decode(b"\x00\x00", "alert")
    with pytest.raises(DecodeError):
        codec.decode(good[:20], "alert")



@pytest.mark.parametrize(("value", "match"), [
    (None, "tombstone"),
    (b"", "empty"),
    (b"\x00\x00\x00\x00", "too short"),
])
def test_decode_rejects_a_missing_or_headless_value(value, match):
    with pytest.raises(DecodeError, match=match):
        Codec().decode(value, "alert")


def test_decode_rejects_bytes_after_the_record():
    codec = Codec()
    good = codec.encode("alert", load_example(example_paths("alert")[0]))
    # fastavro alone would return the first record and ignore the rest of each of these
    for poison in (good + b"\x00", good + good[5:], good + good):
        with pytest.raises(DecodeError, match="bytes after the Avro record"):
            codec.decode(poison, "alert")
    assert codec.decode(good, "alert")["event_id"]  # the exact frame still decodes

def test_encode_rejects_a_record_that_does_not_fit():
    record = load_example(example_paths("household.state")[0])
    record["members"] = "three"
    with pytest.raises(EncodeError):
        Codec().encode("household.state", record)


def test_a_pickled_encoder_writes_what_the_codec_writes():
    # a TPMAP import encodes its events in a child process with one (connectors/tpmap/prepare.py)
    codec = Codec()
    families = sorted({f for f, _ in EXAMPLES})
    encoder = pickle.loads(pickle.dumps(codec.encoder(*families)))
    for fam, path in EXAMPLES:
        assert encoder.encode(fam, load_example(path)) == codec.encode(fam, load_example(path))
    record = load_example(example_paths("household.state")[0])
    record["members"] = "three"
    with pytest.raises(EncodeError):
        encoder.encode("household.state", record)


def test_all_checked_in_versions_are_backward_transitive_compatible():
    assert check_backward_transitive(load_catalog()) == []
    assert compat_main([]) == 0


def _evolve(tmp_path: Path, fam: str, change) -> Path:
    """Copy the catalogue to tmp_path and add the next version of `fam` made by `change(raw_schema)`."""
    shutil.copytree(CATALOG_FILE.parent / "avro", tmp_path / "avro")
    doc = json.loads(CATALOG_FILE.read_text())
    latest = load_catalog().latest(fam)
    raw = json.loads(json.dumps(latest.raw))
    change(raw)
    version = latest.version + 1
    file = f"avro/{latest.path.name.replace(f'.v{latest.version}.', f'.v{version}.')}"
    (tmp_path / file).write_text(json.dumps(raw))
    next_id = max(e["id"] for es in doc["families"].values() for e in es) + 1
    doc["families"][fam].append({"version": version, "id": next_id, "file": file, "fingerprint": schema_fingerprint(raw)})
    (tmp_path / "catalog.json").write_text(json.dumps(doc))
    return tmp_path / "catalog.json"


def test_adding_a_field_with_a_default_is_compatible(tmp_path):
    cat = _evolve(tmp_path, "household.state",
                  lambda s: s["fields"].append({"name": "comment", "type": ["null", "string"], "default": None}))
    assert check_backward_transitive(load_catalog(cat)) == []


def test_an_incompatible_change_fails_the_check(tmp_path, capsys):
    cat = _evolve(tmp_path, "household.state",
                  lambda s: s["fields"].append({"name": "comment", "type": "string"}))  # no default
    problems = check_backward_transitive(load_catalog(cat))
    assert [(p.family, p.reader_version, p.writer_version) for p in problems] == [("household.state", 3, 1),
                                                                                   ("household.state", 3, 2)]
    assert compat_main([str(cat)]) == 1
    assert "INCOMPATIBLE household.state: v3 cannot read v1" in capsys.readouterr().err


def test_old_events_decode_with_the_new_reader(tmp_path):
    cat = _evolve(tmp_path, "household.state",
                  lambda s: s["fields"].append({"name": "comment", "type": ["null", "string"], "default": None}))
    old = Codec().encode("household.state", load_example(example_paths("household.state")[0]))
    decoded = Codec(catalog=load_catalog(cat)).decode(old, "household.state")
    assert decoded["comment"] is None and decoded["version"] == 3


def test_editing_a_published_version_is_refused(tmp_path):
    shutil.copytree(CATALOG_FILE.parent / "avro", tmp_path / "avro")
    shutil.copy(CATALOG_FILE, tmp_path / "catalog.json")
    path = tmp_path / "avro" / "alert.v1.avsc"
    raw = json.loads(path.read_text())
    raw["fields"].append({"name": "extra", "type": "int", "default": 0})
    path.write_text(json.dumps(raw))
    with pytest.raises(CatalogError, match="must not change"):
        load_catalog(tmp_path / "catalog.json")
